import json

import pytest

from assistcode.providers.base import ProviderError, TransientError
from assistcode.providers.mock import MockProvider, keyword_reply
from assistcode.runs import store as rs
from assistcode.runs.engine import RunConfig, code_project


def fast(**kw):
    return RunConfig(provider="mock", model="kw", backoff_base=0.001, backoff_cap=0.01, **kw)


def annotations(project, coder):
    return project.db.execute("SELECT segment_id, code FROM annotations WHERE coder = ? ORDER BY segment_id, code", (coder,)).fetchall()


def test_run_then_same_command_makes_no_call(coded_project):
    first = code_project(coded_project, fast())
    assert first.counts["ok"] == 24 and first.calls == 24 and not first.resumed
    again = code_project(coded_project, fast())
    assert again.already_finished and again.calls == 0 and again.run.id == first.run.id
    codes = {c for _, c in annotations(coded_project, first.run.coder)}
    assert codes == {"safety", "leadership", "workload"}
    # a different template is a different run, but identical prompts would come from the cache
    rs.delete_run(coded_project.db, first.run.id)
    rerun = code_project(coded_project, fast())
    assert rerun.calls == 0 and rerun.cache_hits == 24 and rerun.run.id != first.run.id


def test_provenance_in_manifest(coded_project):
    r = code_project(coded_project, fast(template="deductive-batch", batch_size=5))
    m = r.run.manifest
    assert m["template"]["name"] == "deductive-batch" and len(m["template"]["hash"]) == 64
    assert m["codebook"]["hash"] == coded_project.codebook().hash and m["parameters"]["batch_size"] == 5
    assert m["counts"]["ok"] + m["counts"]["failed"] == m["counts"]["segments"] == 24
    assert m["package"]["assistcode"] and r.run.started_at and r.run.finished_at


def test_resume_after_a_stop_repeats_no_call(coded_project):
    provider = MockProvider("kw")
    # the budget runs out part-way: the run stops cleanly and is resumed by the same command
    partial = code_project(coded_project, fast(max_cost=0.2, price="100,100", max_tokens=50, concurrency=1), provider=provider)
    assert partial.stopped and "budget" in partial.stopped and 0 < partial.counts["ok"] < 24
    assert partial.run.status == "stopped"
    calls_before = len(provider.history)
    done = rs.done_segments(coded_project.db, partial.run.id)
    resumed = code_project(coded_project, fast(max_cost=None, price="100,100", max_tokens=50, concurrency=1), provider=MockProvider("kw"))
    # max_cost is not part of what makes a run the same: the stopped run continues
    assert resumed.resumed and resumed.run.id == partial.run.id and resumed.counts["ok"] == 24
    assert resumed.calls == 24 - len(done) and calls_before == len(done)


def test_failures_are_recorded_with_reasons(coded_project):
    provider = MockProvider("kw")
    provider.enqueue(ProviderError("request refused (400): bad"), *[TransientError("rate limited")] * 6, "not json", "nope", "{broken")
    r = code_project(coded_project, fast(concurrency=1), provider=provider)
    assert r.counts["ok"] + r.counts["failed"] == 24 and r.counts["failed"] == 3
    reasons = sorted(row[0] for row in coded_project.db.execute("SELECT reason FROM run_segments WHERE status = 'failed'"))
    assert reasons[0] == "gave up after 6 attempts: rate limited"
    assert reasons[2] == "request refused (400): bad"
    assert reasons[1].startswith("reply is not JSON")
    raw = coded_project.db.execute("SELECT raw FROM run_segments WHERE reason LIKE '%not JSON%'").fetchone()[0]
    assert raw == "{broken"
    # a failed segment is not seen: agreement leaves it out
    seen = coded_project.db.execute("SELECT count(*) FROM seen WHERE coder = ?", (r.run.coder,)).fetchone()[0]
    assert seen == 21


def test_batch_omission_is_asked_alone_then_failed(coded_project):
    def drop_first(messages):
        data = json.loads(keyword_reply(messages))
        data["segments"] = data["segments"][1:]
        return json.dumps(data)

    provider = MockProvider("kw", default=drop_first)
    r = code_project(coded_project, fast(template="deductive-batch", batch_size=6), provider=provider)
    # each batch of 6 leaves out its first segment; asked alone it is left out again (a batch of one)
    assert r.counts["ok"] == 20 and r.counts["failed"] == 4
    reasons = {row[0] for row in coded_project.db.execute("SELECT reason FROM run_segments WHERE status = 'failed'")}
    assert reasons == {"left out of the reply"} or all("left out" in x for x in reasons)
    assert len(provider.history) == 4 + 4


def test_self_consistency_majority(coded_project):
    replies = iter(['{"codes": [{"code": "safety", "evidence": "", "confidence": 1}]}',
                    '{"codes": [{"code": "safety", "evidence": "", "confidence": 1}, {"code": "workload", "evidence": "", "confidence": 1}]}',
                    '{"codes": []}'] * 100)
    provider = MockProvider("kw", default=lambda m: next(replies))
    first = coded_project.segments()[0].id
    r = code_project(coded_project, fast(samples=3, temperature=0.7, concurrency=1), provider=provider, segment_ids=[first])
    row = coded_project.db.execute("SELECT code, confidence FROM annotations WHERE coder = ?", (r.run.coder,)).fetchall()
    assert [tuple(x) for x in row] == [("safety", pytest.approx(2 / 3))]
    sc = coded_project.db.execute("SELECT self_consistency FROM run_segments WHERE run_id = ?", (r.run.id,)).fetchone()[0]
    assert sc == pytest.approx(1 / 3)
    assert len(provider.history) == 3  # the sample index is part of the cache key


def test_too_long_for_the_context_fails_without_truncating(coded_project):
    r = code_project(coded_project, fast(context_window=300))
    assert r.counts["failed"] == 24 and r.calls == 0
    reason = coded_project.db.execute("SELECT reason FROM run_segments LIMIT 1").fetchone()[0]
    assert "exceeds the context window of 300" in reason and "not truncated" in reason


def test_dry_run_estimates_and_calls_nothing(coded_project):
    provider = MockProvider("kw")
    r = code_project(coded_project, fast(template="deductive-batch", batch_size=10, price="2.5,10"), dry_run=True, provider=provider)
    e = r.estimate
    assert e["calls"] == 3 and e["prompt_tokens"] > 500 and e["cost_usd_typical"] > 0 and provider.history == []
    assert r.run is None and coded_project.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0

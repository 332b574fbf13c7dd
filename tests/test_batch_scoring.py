"""Scoring templates (score-per-code, score-choice) through the Batch API (issue 15 item 1): one request per question
with the first token's log-probabilities, read back into the same scores, calibration, cache and costs as a
synchronous run's, against the testing server's /v1/files and /v1/batches."""
from __future__ import annotations

import asyncio
import json

import pytest

from assistcode.ids import canonical_json
from assistcode.providers.base import CallOptions
from assistcode.providers.logprobs import NoLogprobsError, from_top_logprobs, top_of_body, usage_of_body
from assistcode.runs import batch_store as bs
from assistcode.runs.batch_files import custom_id, score_body
from assistcode.runs.engine import Engine, code_project
from assistcode.runs.scoring import NoLogprobs
from assistcode.testing import FakeOpenAIServer, Plan

from .test_batch import MODEL, N, config, proj, sent, serve, sync_config, twin  # noqa: F401 - fixtures

CODES = 3  # of make_project's codebook
CONTENT_FREE_REQUESTS = 3 * CODES  # score-per-code: three content-free inputs, a question per code, synchronous


def scoring(c, template="score-per-code"):
    c.template = template
    return c


def scores(project):
    return [tuple(r) for r in project.db.execute("SELECT segment_id, code, raw, prob FROM scores ORDER BY segment_id, code")]


def stored(project):
    """Everything a scoring run decides, by segment and code: raw and calibrated scores, proposals, content-free."""
    return {"scores": scores(project),
            "annotations": [tuple(r) for r in project.db.execute(
                "SELECT segment_id, coder, code, confidence FROM annotations ORDER BY segment_id, code")],
            "content_free": [tuple(r) for r in project.db.execute(
                "SELECT input, code, raw FROM content_free_scores ORDER BY input, code")],
            "calibration": project.db.execute("SELECT json_extract(manifest, '$.calibration') FROM runs").fetchall()}


def direct_calls(server):
    """Chat completions asked synchronously (the server answers a batch's lines with the same logic, logged too)."""
    return sum(1 for e in server.log if e["kind"] == "chat" and e["auth"] != "batch")


def record_bodies(server):
    """Every chat-completion body the server answers, as (who asked: "batch" or a key, body)."""
    bodies = []
    real = server.answer

    def answer(body, auth):
        bodies.append((auth, body))
        return real(body, auth)

    server.answer = answer
    return bodies


# -- the same scores as a synchronous run, at half the price ---------------------------------------------------------------
@pytest.mark.parametrize("template,per_segment", [("score-per-code", CODES), ("score-choice", 1)])
def test_a_scoring_run_through_the_batch_api_stores_what_a_synchronous_run_stores(proj, twin, template, per_segment):
    with serve() as server:
        bodies = record_bodies(server)
        r = code_project(proj, scoring(config(server), template))
        batch_bodies = [b for who, b in bodies if who == "batch"]
        direct = [b for who, b in bodies if who != "batch"]
        del bodies[:]
        s = code_project(twin, scoring(sync_config(server), template))
        sync_bodies = [b for _, b in bodies]
    assert r.counts["ok"] == s.counts["ok"] == N and r.counts["failed"] == 0 and r.exit_status == 0
    assert stored(proj) == stored(twin)  # the same parsing, scores, calibration and proposals
    assert len(scores(proj)) == N * CODES and stored(proj)["annotations"]
    # one request per question, each with its own custom_id, the very body a synchronous run POSTs
    assert len(sent(server)) == len(set(sent(server))) == N * per_segment == len(batch_bodies)
    assert sorted(map(canonical_json, batch_bodies + direct)) == sorted(map(canonical_json, sync_bodies))
    assert sent(server) == [custom_id(b) for b in batch_bodies]
    assert all(b["logprobs"] is True and b["max_tokens"] == 1 for b in batch_bodies)
    # only the content-free inputs were asked synchronously; the segments' tokens are the same, at half the price
    assert r.calls == len(direct) == 3 * per_segment
    assert r.counts["prompt_tokens"] == s.counts["prompt_tokens"] > 0
    assert r.counts["completion_tokens"] == s.counts["completion_tokens"] == N * per_segment
    assert r.counts["cost_usd"] == pytest.approx(s.counts["cost_usd"] / 2)
    assert r.run.manifest["batch"]["requests"] == {"done": N * per_segment}
    assert r.run.manifest["scoring"]["kind"] == s.run.manifest["scoring"]["kind"]


def test_parsing_a_batch_reply_agrees_with_the_synchronous_provider(proj):
    from assistcode.providers.openai_compat import OpenAIProvider

    with FakeOpenAIServer(Plan()) as server:
        engine = Engine(proj.db, proj.codebook(), scoring(sync_config(server)))
        seg = proj.segments()[0]
        questions, answers, _ = engine.scoring.questions({"id": seg.id, "text": seg.text, "speaker": seg.speaker})
        provider = OpenAIProvider(MODEL, base_url=server.base_url, api_key="k")
        options = CallOptions(seed=None)
        sync = asyncio.run(provider.score(questions, answers, options))
        # the very reply the server gives that request, as a batch result line's body
        parsed = []
        prompt = completion = 0
        for q, a in zip(questions, answers):
            status, body, _, _ = server.answer(json.loads(json.dumps(score_body(provider, q, options))), "batch")
            assert status == 200
            parsed.append(from_top_logprobs(top_of_body(body), a))
            prompt, completion = prompt + usage_of_body(body)[0], completion + usage_of_body(body)[1]
        assert [p for p, _ in parsed] == sync.probs and [m for _, m in parsed] == sync.mass
        assert (prompt, completion) == (sync.prompt_tokens, sync.completion_tokens)
        assert any(p["yes"] > 0.5 for p in sync.probs) and any(p["yes"] < 0.5 for p in sync.probs)
        # no logprobs: the synchronous provider's reason, word for word
        server.set_plan(Plan(no_logprobs=True))
        with pytest.raises(NoLogprobsError) as exc:
            asyncio.run(OpenAIProvider(MODEL, base_url=server.base_url, api_key="k").score(questions, answers, options))
        status, body, _, _ = server.answer(score_body(provider, questions[0], options), "batch")
        assert top_of_body(body) is None
        assert str(exc.value) == f"{provider.endpoint[0]} returned no log-probabilities for {MODEL}"


# -- killed and resumed --------------------------------------------------------------------------------------------------
def test_a_stopped_scoring_run_resumes_without_sending_again(proj):
    with serve(complete_after=0.3) as server:
        first = code_project(proj, scoring(config(server, wait=False)))
        assert first.counts["ok"] == 0 and first.run.status == "stopped"
        assert len(sent(server)) == N * CODES and len(server.batches.order) == 1
        calls = direct_calls(server)
        again = code_project(proj, scoring(config(server)))  # the same command: polls, reads back
        assert again.counts["ok"] == N and again.resumed and again.calls == 0
        assert len(sent(server)) == N * CODES and len(server.batches.order) == 1
        assert direct_calls(server) == calls == CONTENT_FREE_REQUESTS  # the content-free inputs: from the cache
        last = code_project(proj, scoring(config(server)))
        assert last.already_finished and len(sent(server)) == N * CODES and direct_calls(server) == calls


def test_killed_before_the_batch_id_is_stored_the_scoring_run_finds_its_batch(proj, monkeypatch):
    real = bs.update_submission

    def dies(db, row_id, **values):
        if "batch_id" in values:
            raise KeyboardInterrupt
        real(db, row_id, **values)

    with serve() as server:
        monkeypatch.setattr(bs, "update_submission", dies)
        with pytest.raises(KeyboardInterrupt):
            code_project(proj, scoring(config(server)))
        monkeypatch.setattr(bs, "update_submission", real)
        r = code_project(proj, scoring(config(server)))
        assert r.counts["ok"] == N and len(server.batches.order) == 1 and len(sent(server)) == N * CODES
        assert len(scores(proj)) == N * CODES


# -- partial results: per request ------------------------------------------------------------------------------------------
def test_an_expired_scoring_batch_sends_again_only_the_questions_that_did_not_run(proj, twin):
    with serve(script=[{"expire": True, "keep": 10}]) as server:  # 10 of 72 questions: segment 4 half answered
        r = code_project(proj, scoring(config(server)))
        code_project(twin, scoring(sync_config(server)))
    assert r.counts["ok"] == N and r.calls == CONTENT_FREE_REQUESTS
    assert len(server.batches.order) == 2 and len(sent(server)) == N * CODES + (N * CODES - 10)
    assert set(sent(server)[:10]).isdisjoint(sent(server)[N * CODES:])
    assert stored(proj) == stored(twin)


def test_an_expired_scoring_batch_falls_back_to_synchronous_calls_per_request(proj, twin):
    with serve(script=[{"expire": True, "keep": 10}]) as server:
        r = code_project(proj, scoring(config(server, fallback="sync")))
        calls = direct_calls(server)
        code_project(twin, scoring(sync_config(server)))
    left = N * CODES - 10
    assert r.counts["ok"] == N and len(server.batches.order) == 1 and len(sent(server)) == N * CODES
    assert r.calls == calls == CONTENT_FREE_REQUESTS + left  # the 10 answered in the batch are not asked again
    assert stored(proj) == stored(twin)
    # segments wholly answered in the batch at its price; the rest (one with a batch reply too) at the full price
    rates = [round(v, 6) for (v,) in proj.db.execute(
        "SELECT cost / (prompt_tokens * 0.15 + completion_tokens * 0.6) * 1e6 FROM run_segments ORDER BY segment_id")]
    assert sorted(rates) == [0.5] * 3 + [1.0] * (N - 3)


# -- endpoints without logprobs, bad lines -------------------------------------------------------------------------------
def test_batch_results_without_logprobs_fail_their_segments_with_the_reason(proj):
    with serve() as server:
        first = proj.segments()[0].id
        code_project(proj, scoring(sync_config(server)), segment_ids=[first])  # caches the content-free inputs too
        server.set_plan(Plan(no_logprobs=True, batch={"complete_after": 0.02}))
        r = code_project(proj, scoring(config(server)))
        reason = f"Batch API: {server.base_url} returned no log-probabilities for {MODEL}"
        assert r.counts["ok"] == 1 and r.counts["failed"] == N - 1 and r.exit_status == 3
        reasons = [row[0] for row in proj.db.execute(
            "SELECT reason FROM run_segments WHERE run_id = ? AND status = 'failed'", (r.run.id,))]
        assert reasons == [reason] * (N - 1)
        assert len(sent(server)) == (N - 1) * CODES and r.calls == 0
        rows = proj.db.execute("SELECT count(*) FROM scores WHERE run_id = ?", (r.run.id,)).fetchone()[0]
        assert rows == CODES  # the one segment answered from the cache
        again = code_project(proj, scoring(config(server)))  # nothing sent again, nothing stored twice
        assert again.counts["failed"] == N - 1 and len(sent(server)) == (N - 1) * CODES
        assert proj.db.execute("SELECT count(*) FROM scores WHERE run_id = ?", (r.run.id,)).fetchone()[0] == rows
        assert proj.db.execute("SELECT count(*) FROM run_segments WHERE run_id = ?", (r.run.id,)).fetchone()[0] == N


def test_an_endpoint_without_logprobs_is_refused_before_anything_is_sent(proj):
    with FakeOpenAIServer(Plan(no_logprobs=True, batch={"complete_after": 0.02})) as server:
        with pytest.raises(NoLogprobs, match="gave none"):
            code_project(proj, scoring(config(server)))
        assert server.batches.order == [] and direct_calls(server) == 1  # the probe, as a synchronous run's


def test_malformed_unknown_and_duplicate_lines_of_a_scoring_batch_are_counted_not_stored(proj, twin):
    with serve(script=[{"malformed": 2, "unknown": 1, "duplicate": 3}]) as server:
        r = code_project(proj, scoring(config(server)))
        code_project(twin, scoring(sync_config(server)))
    assert r.counts["ok"] == N
    b = r.run.manifest["batch"]
    assert (b["malformed_lines"], b["unknown_ids"], b["duplicates"]) == (2, 1, 3)
    assert stored(proj) == stored(twin) and len(scores(proj)) == N * CODES
    assert proj.db.execute("SELECT count(*) FROM batch_requests").fetchone()[0] == N * CODES
    assert proj.db.execute("SELECT max(json_array_length(responses)) FROM batch_requests").fetchone()[0] == 1
    assert proj.db.execute("SELECT count(*) FROM batch_requests WHERE custom_id LIKE 'ac-nobody%'").fetchone()[0] == 0


# -- the CLI ------------------------------------------------------------------------------------------------------------------
def test_cli_scoring_batch_no_wait_then_the_same_command_sends_nothing_again(tmp_path, run):
    from .runs.conftest import make_project

    make_project(tmp_path).close()
    proj = str(tmp_path / "proj")
    with serve(complete_after=0.3) as server:
        base = ["code", "--provider", "openai", "--model", MODEL, "--base-url", server.base_url, "--template",
                "score-per-code", "--batch-api", "--project", proj]
        first = run(*base, "--no-wait")
        assert first.code == 3 and f"{N * CODES} requests sent now" in first.out, first.err
        done = run(*base, "--json")
        assert done.code == 0 and done.json()["counts"]["ok"] == N
        assert done.json()["batch"]["requests"] == {"done": N * CODES}
        again = run(*base, "--json")
        assert again.code == 0 and again.json()["counts"]["ok"] == N
        assert len(sent(server)) == N * CODES and len(server.batches.order) == 1
        assert direct_calls(server) == CONTENT_FREE_REQUESTS

"""The Batch API path (issue 15 item 1) through the real ``openai`` SDK against the testing server's /v1/files and
/v1/batches: happy path, split files, resume after a kill, expiry (sent again, or called synchronously), partial
failures, rejected files, malformed lines, unknown ids, duplicate results."""
from __future__ import annotations

import json

import pytest

from assistcode.errors import InputError
from assistcode.runs import batch_store as bs
from assistcode.runs.batch import BatchOptions
from assistcode.runs.batch_files import read_results, split_files
from assistcode.runs.engine import RunConfig, code_project
from assistcode.testing import FakeOpenAIServer, Plan

from .runs.conftest import make_project

N = 24  # segments of make_project
MODEL = "gpt-4o-mini"  # in the price table: costs are compared


@pytest.fixture
def proj(tmp_path):
    (tmp_path / "a").mkdir()
    p = make_project(tmp_path / "a")
    yield p
    p.close()


@pytest.fixture
def twin(tmp_path):
    (tmp_path / "b").mkdir()
    p = make_project(tmp_path / "b")
    yield p
    p.close()


def serve(**batch):
    return FakeOpenAIServer(Plan(batch={"complete_after": 0.05, **batch}))


def config(server, **batch):
    opts = BatchOptions(poll_seconds=0.02, **batch)
    return RunConfig(provider="openai", model=MODEL, base_url=server.base_url, api_key="k", batch=opts)


def sync_config(server):
    return RunConfig(provider="openai", model=MODEL, base_url=server.base_url, api_key="k")


def annotations(project):
    return sorted(tuple(r) for r in project.db.execute(
        "SELECT segment_id, code, evidence FROM annotations ORDER BY segment_id, code"))


def sent(server):
    return server.batches.sent


# -- the happy path ------------------------------------------------------------------------------------------------------
def test_batch_run_codes_like_a_synchronous_run_at_half_the_price(proj, twin):
    with serve() as server:
        r = code_project(proj, config(server))
        calls = server.calls
        s = code_project(twin, sync_config(server))  # the same endpoint: the cache keys name it
        sync_calls = server.calls - calls
        assert r.counts["ok"] == N and r.counts["failed"] == 0 and r.exit_status == 0
        assert annotations(proj) == annotations(twin)  # the same parsing, validation and storage
        assert r.counts["prompt_tokens"] == s.counts["prompt_tokens"]
        assert r.counts["cost_usd"] == pytest.approx(s.counts["cost_usd"] / 2)
        assert len(sent(server)) == sync_calls == N and len(set(sent(server))) == N
        assert r.calls == 0  # nothing called synchronously
        batch = r.run.manifest["batch"]
        assert batch["requests"] == {"done": N} and batch["open"] == []
        assert r.run.manifest["price_usd_per_m_tokens"] == {"input_per_m": 0.075, "output_per_m": 0.3}
        # the cache is a synchronous run's: the same run again synchronously calls nothing
        calls = server.calls
        again = code_project(proj, sync_config(server))
        assert again.already_finished and server.calls == calls


def test_nothing_cached_or_stored_is_sent(proj):
    with serve() as server:
        first = [s.id for s in proj.segments()[:5]]
        code_project(proj, sync_config(server), segment_ids=first)  # paid for synchronously, in another run
        r = code_project(proj, config(server))
        assert r.counts["ok"] == N
        assert len(sent(server)) == N - 5
        code_project(proj, config(server))  # finished: nothing more
        assert len(sent(server)) == N - 5 and len(server.batches.order) == 1


def test_requests_are_split_at_the_count_and_size_limits(proj):
    with serve() as server:
        r = code_project(proj, config(server, max_requests=5))
        assert r.counts["ok"] == N
        sizes = [len([x for x in server.batches.files[server.batches.batches[b]["input_file_id"]]["data"].splitlines()])
                 for b in server.batches.order]
        assert sizes == [5, 5, 5, 5, 4]
    with serve() as server:
        limit = 4000  # bytes: a request line is about 1,600
        code_project(proj, config(server, max_bytes=limit))
        data = [server.batches.files[server.batches.batches[b]["input_file_id"]]["data"] for b in server.batches.order]
        assert all(len(d) <= limit for d in data) and sum(d.count(b"\n") for d in data) == N
        assert len(data) == 12


def test_split_files_refuses_a_line_no_file_can_carry():
    assert [len(c) for c in split_files([(str(i), 10) for i in range(7)], 3, 100)] == [3, 3, 1]
    assert [len(c) for c in split_files([(str(i), 10) for i in range(7)], 50, 25)] == [2, 2, 2, 1]
    assert [len(c) for c in split_files([(str(i), 10) for i in range(7)], 50, 20)] == [2, 2, 2, 1]
    with pytest.raises(ValueError, match="request big is 11 bytes"):
        list(split_files([("big", 11)], 5, 10))


# -- killed and resumed ----------------------------------------------------------------------------------------------------
def test_a_command_that_stops_after_sending_resumes_without_sending_again(proj):
    with serve(complete_after=0.3) as server:
        first = code_project(proj, config(server, wait=False))
        assert first.counts["ok"] == 0 and first.run.status == "stopped" and first.stopped
        assert len(server.batches.order) == 1 and len(sent(server)) == N
        rows = proj.db.execute("SELECT batch_id, status FROM batches").fetchall()
        assert [tuple(r) for r in rows] == [("batch_00001", "validating")]
        again = code_project(proj, config(server))  # the same command: polls, reads back
        assert again.counts["ok"] == N and again.resumed
        assert len(server.batches.order) == 1 and len(sent(server)) == N


def test_killed_between_creating_the_batch_and_storing_its_id(proj, monkeypatch):
    real = bs.update_submission

    def dies(db, row_id, **values):
        if "batch_id" in values:
            raise KeyboardInterrupt  # the batch exists at the API; the store never heard of it
        real(db, row_id, **values)

    with serve() as server:
        monkeypatch.setattr(bs, "update_submission", dies)
        with pytest.raises(KeyboardInterrupt):
            code_project(proj, config(server))
        monkeypatch.setattr(bs, "update_submission", real)
        assert proj.db.execute("SELECT batch_id, status FROM batches").fetchone()[1] == "uploaded"
        r = code_project(proj, config(server))
        assert r.counts["ok"] == N
        assert len(server.batches.order) == 1 and len(sent(server)) == N  # found by its tag, not sent again


def test_kill_9_while_waiting_then_the_same_command_reads_back_and_a_second_is_refused_meanwhile(tmp_path):
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from assistcode.runs.store import RunBusy

    p = make_project(tmp_path)
    proj = tmp_path / "proj"
    with serve(complete_after=600) as server:
        cmd = [sys.executable, "-m", "assistcode", "code", "--provider", "openai", "--model", MODEL, "--base-url",
               server.base_url, "--batch-api", "--project", str(proj)]
        child = subprocess.Popen(cmd, env={**os.environ, "OPENAI_API_KEY": "k"}, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        db = sqlite3.connect(proj / "assistcode.db")
        deadline = time.time() + 60
        while time.time() < deadline and child.poll() is None:
            try:
                created = db.execute("SELECT count(*) FROM batches WHERE batch_id IS NOT NULL").fetchone()[0]
            except sqlite3.OperationalError:
                created = 0
            if created:
                break
            time.sleep(0.05)
        assert created == 1, child.stderr.read() if child.poll() is not None else "no batch after 60 s"
        time.sleep(0.3)  # it is polling now
        with pytest.raises(RunBusy):  # the same command meanwhile: refused, nothing sent again
            code_project(p, config(server, wait=False))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert len(sent(server)) == N and db.execute("SELECT count(*) FROM run_segments").fetchone()[0] == 0
        server.set_plan(Plan(batch={"complete_after": 0}))
        r = code_project(p, config(server))
        assert r.counts["ok"] == N and r.resumed
        assert len(server.batches.order) == 1 and len(sent(server)) == N
    p.close()


def test_killed_during_the_upload_the_requests_are_collected_again(proj, monkeypatch):
    from assistcode.runs.batch import Transport

    real = Transport.upload

    async def dies(self, name, data):
        raise KeyboardInterrupt

    with serve() as server:
        monkeypatch.setattr(Transport, "upload", dies)
        with pytest.raises(KeyboardInterrupt):
            code_project(proj, config(server))
        monkeypatch.setattr(Transport, "upload", real)
        r = code_project(proj, config(server))
        assert r.counts["ok"] == N and len(server.batches.order) == 1 and len(sent(server)) == N
        rows = [tuple(x) for x in proj.db.execute("SELECT status, error FROM batches ORDER BY id")]
        assert rows == [("abandoned", "the command stopped before the file was uploaded"), ("ingested", None)]


# -- expiry, failures, rejection -----------------------------------------------------------------------------------------
def test_an_expired_batch_is_sent_again_for_what_did_not_run(proj):
    with serve(script=[{"expire": True, "keep": 10}]) as server:
        r = code_project(proj, config(server))
        assert r.counts["ok"] == N and r.calls == 0
        assert len(server.batches.order) == 2 and len(sent(server)) == N + 14
        assert r.run.manifest["batch"]["expired"] == 1
        first = proj.db.execute("SELECT counts FROM batches ORDER BY id").fetchone()[0]
        assert json.loads(first)["replies"] == 10 and json.loads(first)["sent_again"] == 14


def test_an_expired_batch_falls_back_to_synchronous_calls(proj):
    with serve(script=[{"expire": True, "keep": 10}]) as server:
        r = code_project(proj, config(server, fallback="sync"))
        assert r.counts["ok"] == N and r.calls == 14
        assert len(server.batches.order) == 1 and len(sent(server)) == N
        assert server.calls == N  # 10 lines in the batch, 14 calls made directly
        costs = dict(proj.db.execute("SELECT segment_id, cost / (prompt_tokens * 0.15 + completion_tokens * 0.6) * 1e6 "
                                     "FROM run_segments"))
        assert sorted(round(v, 6) for v in costs.values()) == [0.5] * 10 + [1.0] * 14  # batch price, full price


def test_expiring_every_time_fails_with_the_reason_after_the_submission_limit(proj):
    with serve(script=[{"expire": True}] * 3) as server:
        r = code_project(proj, config(server, max_submissions=3))
        assert r.counts["ok"] == 0 and r.counts["failed"] == N and r.exit_status == 4
        assert len(server.batches.order) == 3
        reasons = {row[0] for row in proj.db.execute("SELECT reason FROM run_segments")}
        assert reasons == {"Batch API: batch_expired: not run: the batch expired"}  # the error file's words
        # a new command asks again (as a synchronous re-run retries failures that had no reply)
        r = code_project(proj, config(server))
        assert r.counts["ok"] == N and len(server.batches.order) == 4


def test_partial_failures_are_sent_again_or_fail_for_good(proj):
    with serve(script=[{"fail": [0, 3]}]) as server:
        r = code_project(proj, config(server))
        assert r.counts["ok"] == N and len(sent(server)) == N + 2
    # refused (400): a second try would be refused too, as a synchronous call would be; another run (template)
    with serve(script=[{"fail": [1, 2]}], fail_status=400) as server:
        c = config(server)
        c.template = "deductive-cot"
        r = code_project(proj, c)
        assert r.counts["ok"] == N - 2 and r.counts["failed"] == 2 and r.exit_status == 3
        assert len(sent(server)) == N
        reasons = [row[0] for row in proj.db.execute("SELECT reason FROM run_segments WHERE run_id = ? AND status = 'failed'",
                                                     (r.run.id,))]
        assert reasons == ["Batch API: request refused (400): scripted failure"] * 2


def test_a_rejected_file_is_counted_and_its_requests_sent_again(proj):
    with serve(script=[{"reject": "line 3 is not valid"}]) as server:
        r = code_project(proj, config(server))
        assert r.counts["ok"] == N and len(server.batches.order) == 2
        first = json.loads(proj.db.execute("SELECT counts FROM batches ORDER BY id").fetchone()[0])
        assert first["status"] == "failed" and first["sent_again"] == N


def test_a_refused_upload_is_counted_and_sent_again(proj):
    with serve(script=[{"upload_status": 400}]) as server:
        r = code_project(proj, config(server))
        assert r.counts["ok"] == N
        assert r.run.manifest["batch"]["rejected_or_lost"] == 1
        row = proj.db.execute("SELECT status, error FROM batches ORDER BY id").fetchone()
        assert row[0] == "abandoned" and "batch file rejected by the API (400)" in row[1]


# -- bad lines ---------------------------------------------------------------------------------------------------------------
def test_malformed_unknown_and_duplicate_lines_are_counted_and_nothing_is_stored_twice(proj, twin):
    with serve(script=[{"malformed": 2, "unknown": 1, "duplicate": 3}]) as server:
        r = code_project(proj, config(server))
        code_project(twin, sync_config(server))
    assert r.counts["ok"] == N
    b = r.run.manifest["batch"]
    assert (b["malformed_lines"], b["unknown_ids"], b["duplicates"]) == (2, 1, 3)
    assert annotations(proj) == annotations(twin)
    assert proj.db.execute("SELECT count(*) FROM seen").fetchone()[0] == N
    notes = json.loads(proj.db.execute("SELECT counts FROM batches").fetchone()[0])["notes"]
    assert any(n.startswith("output file line 28: not a result line") for n in notes)


def test_read_results_counts_a_result_for_a_request_already_answered():
    line = json.dumps({"custom_id": "a", "response": {"status_code": 200, "body": {"choices": []}}})
    got = read_results([("output file", 1, line), ("output file", 2, line),
                        ("output file", 3, json.dumps({"custom_id": "b", "response": {"status_code": 200, "body": {"choices": []}}})),
                        ("output file", 4, json.dumps({"custom_id": "zz"})), ("error file", 1, "[1, 2")],
                       expected={"a"}, known={"a", "b"})
    assert list(got.outcomes) == ["a"] and got.outcomes["a"].reply == {"choices": []}
    assert got.duplicates == ["output file line 2: a", "output file line 3: b"]  # b: stored before
    assert got.unknown_ids == ["output file line 4: zz"] and len(got.malformed_lines) == 1


def test_a_malformed_reply_is_asked_again_in_a_new_batch(proj):
    seg = proj.segments()[0]
    with FakeOpenAIServer(Plan(batch={"complete_after": 0.02}, queue=[{"content": "{not json"}])) as server:
        r = code_project(proj, config(server), segment_ids=[seg.id])
        assert r.counts["ok"] == 1
        assert len(sent(server)) == 2 and sent(server)[0] == sent(server)[1]  # the same request, once more


def test_a_refused_structured_output_mode_is_asked_in_the_next(proj):
    with FakeOpenAIServer(Plan(reject_json_schema=True, batch={"complete_after": 0.02})) as server:
        r = code_project(proj, config(server))
        assert r.counts["ok"] == N and len(server.batches.order) == 2 and len(sent(server)) == 2 * N
        assert r.run.manifest["provider"]["structured_output"] == "json_object"
        modes = {e["response_format"] for e in server.log}
        assert modes == {"json_schema", "json_object"}


def test_several_segments_per_request_and_several_samples(proj, twin):
    with serve() as server:
        c = config(server)
        c.template, c.batch_size, c.samples, c.temperature = "deductive-batch", 5, 3, 0.5
        r = code_project(proj, c)
        assert r.counts["ok"] == N and len(sent(server)) == 5 * 3  # 5 requests of up to 5 segments, 3 samples each
        s = sync_config(server)
        s.template, s.batch_size, s.samples, s.temperature = "deductive-batch", 5, 3, 0.5
        code_project(twin, s)
        assert annotations(proj) == annotations(twin)


def test_a_dry_run_estimates_at_the_batch_price_and_sends_nothing(proj):
    with serve() as server:
        plain = code_project(proj, sync_config(server), dry_run=True)
        r = code_project(proj, config(server), dry_run=True)
        assert r.estimate["calls"] == plain.estimate["calls"] == N
        assert r.estimate["cost_usd_typical"] == pytest.approx(plain.estimate["cost_usd_typical"] / 2)
        assert server.batches.order == [] and server.calls == 0


def test_max_cost_bounds_what_is_sent_at_the_worst_cost(proj):
    with serve() as server:
        c = config(server)
        c.max_cost = 0.0033  # the worst cost of a request (its prompt and 1,024 reply tokens) is about $0.00032
        r = code_project(proj, c)
        first = len(server.batches.batches["batch_00001"]["_lines"])
        assert 5 <= first <= 11 and len(server.batches.order) >= 3
        assert r.counts["ok"] == N and r.counts["cost_usd"] <= 0.0033  # what was spent left room for the rest


def test_a_key_echoed_in_a_batch_reply_is_stored_nowhere(proj):
    key = "sk-test-ABCDEF0123456789-secret"
    escaped = "".join(f"\\u{ord(ch):04x}" for ch in key)  # the key written with JSON escapes
    plain = json.dumps({"codes": [{"code": "safety", "rationale": f"the key is {key}", "evidence": "", "confidence": 0.9}]})
    hidden = '{"codes": [{"code": "safety", "rationale": "' + escaped + '", "evidence": "", "confidence": 0.9}]}'
    segs = [s.id for s in proj.segments()[:2]]
    with FakeOpenAIServer(Plan(batch={"complete_after": 0.02}, queue=[{"content": plain}, {"content": hidden}])) as server:
        c = config(server)
        c.api_key = key
        r = code_project(proj, c, segment_ids=segs)
        assert r.counts["ok"] == 2
    proj.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in proj.path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert key.encode() not in data and key[-12:].encode() not in data, path
    rationales = {r[0] for r in proj.db.execute("SELECT rationale FROM annotations")}
    assert rationales == {"the key is ***", "***"}


# -- refusals up front -------------------------------------------------------------------------------------------------------
def test_batch_api_refusals(proj):
    with serve() as server:
        for bad, match in ((dict(fallback="later"), "resubmit or sync"), (dict(max_requests=0), "1 or more")):
            with pytest.raises(InputError, match=match):
                code_project(proj, config(server, **bad))
        c = config(server)
        c.replicas = ("http://127.0.0.1:9/v1",)  # scoring templates go through (tests/test_batch_scoring.py)
        with pytest.raises(InputError, match="not with several --base-url"):
            code_project(proj, c)
        c = config(server)
        c.provider = "mock"
        with pytest.raises(InputError, match="goes with --provider openai"):
            code_project(proj, c)
        c = config(server, max_bytes=100)
        with pytest.raises(InputError, match="more than a batch file may hold"):
            code_project(proj, c)
        assert server.batches.order == [] and server.calls == 0


def test_local_only_refuses_a_remote_endpoint_before_anything_is_sent(proj):
    c = RunConfig(provider="openai", model=MODEL, base_url="https://api.example.com/v1", api_key="k", local_only=True,
                  batch=BatchOptions())
    with pytest.raises(InputError):
        code_project(proj, c)


# -- the CLI ------------------------------------------------------------------------------------------------------------------
def test_cli_batch_api_no_wait_then_status_then_resume(tmp_path, run):
    p = make_project(tmp_path)
    p.close()
    proj = str(tmp_path / "proj")
    with serve(complete_after=0.3) as server:
        base = ["code", "--provider", "openai", "--model", MODEL, "--base-url", server.base_url, "--batch-api",
                "--project", proj]
        first = run(*base, "--no-wait")
        assert first.code == 3 and "24 requests sent now" in first.out and "batch: sent 24 requests" in first.err
        status = run("runs", "status", "1", "--project", proj)
        assert status.code == 0 and "batch_00001" in status.out and "1 batches open" in status.out
        done = run(*base, "--batch-fallback", "sync", "--json")
        assert done.code == 0 and done.json()["counts"]["ok"] == 24 and done.json()["batch"]["requests"] == {"done": 24}
        st = run("runs", "status", "1", "--json", "--project", proj)
        assert st.json()["ok"] == 24 and st.json()["batches"][0]["status"] == "ingested"
        assert len(server.batches.order) == 1
        bad = run(*base[:-3], "--batch-fallback", "sync", "--project", proj)
        assert bad.code == 2 and "--batch-fallback and --no-wait go with --batch-api" in bad.err


def test_migration_columns(project):
    cols = {r[1] for r in project.db.execute("PRAGMA table_info(batches)")}
    assert {"run_id", "tag", "input_file_id", "batch_id", "status", "requests", "bytes", "counts"} <= cols
    cols = {r[1] for r in project.db.execute("PRAGMA table_info(batch_requests)")}
    assert {"run_id", "custom_id", "batch", "status", "attempts", "responses", "error"} <= cols


@pytest.mark.parametrize("mode", ["json_schema", "tools"])
def test_a_reply_read_from_a_batch_parses_as_the_sdk_object_does(mode):
    from openai.types.chat import ChatCompletion

    from assistcode.providers.openai_compat import OpenAIProvider

    provider = OpenAIProvider("m", base_url="http://127.0.0.1:9/v1")
    tool = {"id": "c", "type": "function", "function": {"name": "reply", "arguments": '{"codes": []}'}}
    bodies = [{"id": "x", "model": "m", "usage": {"prompt_tokens": 5, "completion_tokens": 2},
               "choices": [{"index": 0, "finish_reason": "length",
                            "message": {"role": "assistant", "content": None, "tool_calls": [tool]}}]},
              {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}]
    for body in bodies:
        assert provider._reply(body, mode) == provider._reply(ChatCompletion.construct(**body), mode)  # as batch reads it

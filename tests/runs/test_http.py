"""The engine through the real ``openai`` client stack, against a real HTTP server on 127.0.0.1."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from assistcode.runs import store as rs
from assistcode.runs.engine import RunConfig, code_project
from assistcode.testing import FakeOpenAIServer, Plan

from ..conftest import need

KEY = "sk-test-ABCDEF0123456789-secret"


def http(server, **kw):
    base = dict(provider="openai", model="fake", base_url=server.base_url, api_key=KEY, timeout=2.0,
                backoff_base=0.01, backoff_cap=0.05)
    base.update(kw)
    return RunConfig(**base)


def test_json_schema_refusal_falls_back_once_and_is_remembered(coded_project, server):
    server.set_plan(Plan(reject_json_schema=True))
    r = code_project(coded_project, http(server, concurrency=4))
    assert r.counts["ok"] == 24
    formats = [e["response_format"] for e in server.log]
    refused = formats.count("json_schema")
    assert 1 <= refused <= 4  # only the calls already in flight saw the refusal
    # their refusals may be logged after the first retries in JSON mode, never later than that
    assert max(i for i, f in enumerate(formats) if f == "json_schema") < 8
    assert set(formats[8:]) == {"json_object"}
    assert rs.endpoint_mode(coded_project.db, server.base_url, "fake") == "json_object"
    assert r.run.manifest["provider"]["structured_output"] == "json_object"
    # the next run on this endpoint starts in JSON mode: no refusal paid again
    server.log.clear()
    code_project(coded_project, http(server, template="deductive-cot"))
    assert "json_schema" not in {e["response_format"] for e in server.log}


def test_retry_after_and_server_errors_are_retried(coded_project, server):
    server.set_plan(Plan(queue=[{"status": 429, "headers": {"Retry-After": "0.3"}}, {"status": 500}, {"status": 503}]))
    first = coded_project.segments()[:1]
    start = time.perf_counter()
    # a Retry-After under the backoff cap is honoured (above it, the cap is: tests/faults/test_runs_faults.py)
    r = code_project(coded_project, http(server, concurrency=1, backoff_cap=0.5), segment_ids=[s.id for s in first])
    assert r.counts["ok"] == 1 and r.calls == 4 and time.perf_counter() - start >= 0.3
    attempts = coded_project.db.execute("SELECT attempts FROM run_segments").fetchone()[0]
    assert attempts == 4


def test_a_reply_cut_at_max_tokens_is_not_asked_again_at_temperature_0(coded_project, server):
    cut = {"status": 200, "content": '{"codes": [{"code": "a", "rationale": "loops and loops', "finish_reason": "length"}
    server.set_plan(Plan(queue=[cut, cut]))
    seg = coded_project.segments()[0]
    r = code_project(coded_project, http(server, concurrency=1, max_tokens=50), segment_ids=[seg.id])
    assert r.counts["failed"] == 1 and server.calls == 1  # the same prompt at temperature 0 stops at the same place
    reason = coded_project.db.execute("SELECT reason FROM run_segments").fetchone()[0]
    assert "cut at --max-tokens 50" in reason
    # at a temperature above 0 another sample may fit: it is asked again
    r = code_project(coded_project, http(server, concurrency=1, max_tokens=50, temperature=0.7), segment_ids=[seg.id])
    assert r.counts["ok"] == 1 and server.calls == 3


def test_stall_past_the_timeout_is_retried(coded_project, server):
    server.set_plan(Plan(queue=[{"status": 200, "content": '{"codes": []}', "delay": 5}]))
    seg = coded_project.segments()[0]
    r = code_project(coded_project, http(server, timeout=0.5, concurrency=1), segment_ids=[seg.id])
    assert r.counts["ok"] == 1 and server.calls == 2


def test_fault_script_every_segment_ends_and_counts_add_up(tmp_path):
    from .conftest import make_project

    project = make_project(tmp_path, n_docs=20, turns=10)  # 200 segments
    plan = Plan(rate_429=0.10, rate_500=0.05, rate_stall=0.02, stall_seconds=3, rate_malformed=0.05,
                rate_unknown_code=0.05, seed=7, retry_after=0.01)
    with FakeOpenAIServer(plan) as server:
        r = code_project(project, http(server, timeout=0.5, concurrency=16, max_attempts=4))
    total = len(project.segments())
    c = r.counts
    assert c["ok"] + c["failed"] == total == 200
    m = r.run.manifest["counts"]
    assert m["ok"] + m["failed"] + m["not_yet_coded"] == m["segments"] and m["not_yet_coded"] == 0
    outcomes = {e["outcome"] for e in server.log}
    assert {"429", "500", "stall", "malformed", "unknown_code", "ok"} <= outcomes
    assert c["unknown_codes_dropped"] > 0
    dupes = project.db.execute("SELECT segment_id, code, count(*) FROM annotations WHERE coder = ? GROUP BY 1, 2 HAVING count(*) > 1",
                               (r.run.coder,)).fetchall()
    assert dupes == []
    for reason, in project.db.execute("SELECT reason FROM run_segments WHERE status = 'failed'"):
        assert reason  # every failure says why
    raw = project.db.execute("SELECT count(*) FROM run_segments WHERE unknown_codes IS NOT NULL AND raw IS NOT NULL").fetchone()[0]
    assert raw == project.db.execute("SELECT count(*) FROM run_segments WHERE unknown_codes IS NOT NULL").fetchone()[0] > 0
    project.close()


def test_kill_9_then_the_same_command_completes_without_repeating(tmp_path):
    from .conftest import make_project

    project = make_project(tmp_path, n_docs=10, turns=10)  # 100 segments
    project.close()
    proj = tmp_path / "proj"
    with FakeOpenAIServer(Plan(latency=0.05)) as server:
        cmd = [sys.executable, "-m", "assistcode", "code", "--provider", "openai", "--model", "fake", "--base-url",
               server.base_url, "--concurrency", "2", "--project", str(proj), "--json"]
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        import sqlite3

        db = sqlite3.connect(proj / "assistcode.db")
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                done = db.execute("SELECT count(*) FROM run_segments").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= 30:
                break
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        before = {r[0] for r in db.execute("SELECT segment_id FROM run_segments")}
        texts = dict(db.execute("SELECT id, text FROM segments"))
        assert 30 <= len(before) < 100
        server.log.clear()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["resumed"] and result["counts"]["ok"] == 100
        # no segment coded twice, and no call for a segment finished before the kill
        assert db.execute("SELECT count(*), count(DISTINCT segment_id) FROM run_segments").fetchone() == (100, 100)
        asked = [e["last_message"] for e in server.log]
        for seg in before:
            assert not any(texts[seg] in m for m in asked)
        # and the same command once more: reported, no call
        server.log.clear()
        again = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60).stdout)
        assert again["already_finished"] and server.log == []


def test_the_api_key_is_written_nowhere(tmp_path, run):
    from .conftest import make_project

    project = make_project(tmp_path)
    project.close()
    proj = tmp_path / "proj"
    out_dir = tmp_path / "out"
    with FakeOpenAIServer(Plan(queue=[{"status": 500}])) as server:
        os.environ["MY_KEY_VAR"] = KEY
        try:
            base = server.base_url.replace("http://", f"http://user:{KEY}@") + f"?api-key={KEY}"
            r = run("code", "--provider", "openai", "--model", "fake", "--base-url", server.base_url, "--api-key-env",
                    "MY_KEY_VAR", "--project", proj)
            r2 = run("code", "--provider", "openai", "--model", "fake2", "--base-url", base, "--project", proj, "--max-attempts", "1")
        finally:
            del os.environ["MY_KEY_VAR"]
        assert server.log[0]["auth"].startswith("Bearer sk-t")  # the key was sent to the endpoint...
    texts = [r.out, r.err, r2.out, r2.err, run("runs", "show", "1", "--project", proj).out,
             run("runs", "list", "--json", "--project", proj).out]
    run("export", "annotations", "--output", out_dir / "a.csv", "--project", proj)
    run("eval", "--project", proj, "--n-boot", "0", "--json-out", out_dir / "e.json", "--html", out_dir / "e.html")
    for path in [*proj.rglob("*"), *out_dir.rglob("*")]:
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    for text in texts:
        assert KEY not in text  # ...and stored, logged and exported nowhere
    assert any("user:***@" in t for t in texts)  # credentials in a base URL are redacted where shown


def test_langchain_chat_model_through_the_same_server(coded_project, server):
    need("langchain_openai")
    config = RunConfig(provider="langchain", model="fake", provider_options={
        "chat_model": "langchain_openai:ChatOpenAI", "base_url": server.base_url, "api_key": KEY, "max_retries": 0})
    r = code_project(coded_project, config)
    assert r.counts["ok"] == 24 and server.calls == 24
    assert "api_key" not in json.dumps(r.run.manifest) and KEY not in json.dumps(r.run.manifest)
    assert os.environ.get("LANGCHAIN_TRACING_V2") == "false"


def test_local_only_refuses_remote_endpoints(coded_project):
    from assistcode.errors import InputError

    with pytest.raises(InputError, match="--local-only refuses the endpoint https://api.example.com/v1"):
        code_project(coded_project, RunConfig(provider="openai", model="m", base_url="https://api.example.com/v1", local_only=True))

"""Faults of a model run, through the real CLI against the real local server: validated options, exit statuses,
failures that a re-run retries, capped waits, a total deadline per call, separate retry budgets, and two commands
on the same run (items 7 to 10 of issue 13). Every subprocess is guarded by a hard time limit."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistcode.testing import FakeOpenAIServer, Plan
from tests.runs.conftest import make_project

KEY = "sk-test-faults-0123456789"
SEGMENTS = 24  # make_project's default: 4 interviews of 6 turns


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    make_project(tmp_path).close()
    return tmp_path / "proj"


def code_cmd(server: FakeOpenAIServer, proj: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "assistcode", "code", "--provider", "openai", "--model", "fake", "--base-url",
            server.base_url, "--project", str(proj), "--json", *extra]


def run_code(server: FakeOpenAIServer, proj: Path, *extra: str, limit: float = 60) -> subprocess.CompletedProcess[str]:
    """``assistcode code`` in a subprocess, killed past ``limit`` seconds (a hang fails the test, never the suite)."""
    return subprocess.run(code_cmd(server, proj, *extra), env={**os.environ, "OPENAI_API_KEY": KEY},
                          capture_output=True, text=True, timeout=limit)


def rows(proj: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(proj / "assistcode.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def no_traceback(*outs: str) -> None:
    for out in outs:
        assert "Traceback" not in out and "OperationalError" not in out and "IntegrityError" not in out, out


# -- item 8: option values, exit statuses, failures that are not sticky -------------------------------------------
@pytest.mark.parametrize("option,value", [
    ("--timeout", "0"), ("--timeout", "-1"), ("--timeout", "nan"), ("--timeout", "inf"),
    ("--max-attempts", "0"), ("--max-attempts", "-2"), ("--temperature", "nan"), ("--temperature", "-0.5"),
    ("--temperature", "inf"), ("--concurrency", "0"), ("--concurrency", "-4"), ("--samples", "0"),
    ("--batch-size", "0"), ("--max-tokens", "0"), ("--max-cost", "nan"), ("--max-cost", "-1"),
    ("--context-window", "0"), ("--backoff-cap", "nan"), ("--backoff-cap", "-1"), ("--n-examples", "0"),
])
def test_bad_option_values_are_refused_in_one_line(proj, run, option, value):
    with FakeOpenAIServer(Plan()) as server:
        r = run("code", "--provider", "openai", "--model", "fake", "--base-url", server.base_url, "--project", proj,
                option, value)
        assert server.calls == 0
    assert r.code == 2, (r.out, r.err)
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert len(lines) == 1 and option in lines[0], r.err
    no_traceback(r.err)
    assert rows(proj, "SELECT count(*) FROM runs") == [(0,)]  # nothing written


def test_exit_statuses_and_a_rerun_retries_failed_segments(proj):
    with FakeOpenAIServer(Plan(rate_500=1.0)) as server:  # one endpoint throughout: it is part of the run's identity
        # the server is down: every segment fails, nothing could be coded -> 4
        r = run_code(server, proj, "--max-attempts", "1", "--concurrency", "1")
        assert r.returncode == 4, r.stderr
        no_traceback(r.stderr)
        assert json.loads(r.stdout)["counts"]["failed"] == SEGMENTS

        # back up, but one call still fails: re-running retries the failed segments (not "already finished") -> 3
        server.set_plan(Plan(queue=[{"status": 500}]))
        server.log.clear()
        r = run_code(server, proj, "--max-attempts", "1", "--concurrency", "1")
        assert server.calls == SEGMENTS
        assert r.returncode == 3, r.stderr
        out = json.loads(r.stdout)
        assert not out["already_finished"] and out["resumed"]
        assert (out["counts"]["ok"], out["counts"]["failed"]) == (SEGMENTS - 1, 1)
        assert rows(proj, "SELECT count(*) FROM runs") == [(1,)]  # the same run, resumed

        # once more with sane values (timeout and attempts are not the run's identity): only the failed one is asked
        server.set_plan(Plan())
        server.log.clear()
        r = run_code(server, proj, "--max-attempts", "4", "--timeout", "20")
        assert server.calls == 1
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["counts"]["ok"] == SEGMENTS
        assert rows(proj, "SELECT count(*), count(DISTINCT segment_id), sum(status = 'ok') FROM run_segments") == [
            (SEGMENTS, SEGMENTS, SEGMENTS)]
        assert rows(proj, "SELECT count(*) FROM runs") == [(1,)]
        assert rows(proj, "SELECT segment_id FROM annotations GROUP BY segment_id, code, coder HAVING count(*) > 1") == []
        # and now it is finished: reported, no call, exit 0
        server.log.clear()
        r = run_code(server, proj)
        assert server.calls == 0
        assert r.returncode == 0 and json.loads(r.stdout)["already_finished"]


# -- item 9: waits capped, a total deadline per call ---------------------------------------------------------------
@pytest.mark.parametrize("retry_after", ["3600", "inf"])
def test_retry_after_is_capped_by_the_backoff_cap(proj, retry_after):
    with FakeOpenAIServer(Plan(queue=[{"status": 429, "headers": {"Retry-After": retry_after}}])) as server:
        start = time.monotonic()
        r = run_code(server, proj, "--backoff-cap", "0.5", "--concurrency", "1", limit=45)
        elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"]["ok"] == SEGMENTS and server.calls == SEGMENTS + 1
    assert elapsed < 40


def test_a_server_dripping_its_body_cannot_outlast_the_timeout(proj):
    # the first reply arrives one byte every half second (about 3 minutes in all): each read is quick, the call is not
    drip = {"status": 200, "content": '{"codes": []}', "drip": 0.5}
    with FakeOpenAIServer(Plan(queue=[drip])) as server:
        start = time.monotonic()
        r = run_code(server, proj, "--timeout", "2", "--max-attempts", "2", "--backoff-cap", "0.1", "--concurrency", "1",
                     limit=60)
        elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"]["ok"] == SEGMENTS and server.calls == SEGMENTS + 1
    assert elapsed < 45  # 2 s for the dripping call, not the minutes its body takes


def test_a_dripping_server_cannot_outlast_the_timeout_of_a_scoring_call(proj):
    # the probe of a scoring template (its first log-probability request) drips: cut at --timeout, asked again
    drip = {"status": 200, "content": "yes", "drip": 0.5}
    with FakeOpenAIServer(Plan(queue=[drip])) as server:
        start = time.monotonic()
        r = run_code(server, proj, "--template", "score-per-code", "--timeout", "2", "--max-attempts", "2",
                     "--backoff-cap", "0.1", "--concurrency", "1", limit=90)
        elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"]["ok"] == SEGMENTS
    assert elapsed < 60  # 2 s for the dripping call, not the seconds its body takes


def test_every_attempt_dripping_ends_within_attempts_times_timeout(proj):
    drip = {"status": 200, "content": '{"codes": []}', "drip": 0.5}
    with FakeOpenAIServer(Plan(queue=[drip] * 3)) as server:
        seg_limit = 3 * 1.5 + 3 * 0.1  # attempts x --timeout plus the capped backoff
        start = time.monotonic()
        r = run_code(server, proj, "--timeout", "1.5", "--max-attempts", "3", "--backoff-cap", "0.1", "--concurrency", "1",
                     limit=60)
        elapsed = time.monotonic() - start
    assert r.returncode == 3, r.stderr
    out = json.loads(r.stdout)
    assert out["counts"]["failed"] == 1 and out["counts"]["ok"] == SEGMENTS - 1
    reason = rows(proj, "SELECT reason FROM run_segments WHERE status = 'failed'")[0][0]
    assert "timed out" in reason and "3 attempts" in reason
    assert elapsed < seg_limit + 30  # the rest: process start and 23 quick calls


# -- item 10: malformed replies and transient errors have separate budgets -------------------------------------------
def test_two_server_errors_then_an_empty_reply_do_not_fail_the_segment(proj):
    script = [{"status": 503}, {"status": 503}, {"status": 200, "content": ""}]
    with FakeOpenAIServer(Plan(queue=script)) as server:
        r = run_code(server, proj, "--backoff-cap", "0.05", "--concurrency", "1")
        assert server.calls == SEGMENTS + 3
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"] == {**json.loads(r.stdout)["counts"], "ok": SEGMENTS, "failed": 0}
    assert rows(proj, "SELECT max(attempts) FROM run_segments") == [(4,)]


def test_malformed_replies_have_their_own_small_budget(proj):
    bad = {"status": 200, "content": "not json"}
    with FakeOpenAIServer(Plan(queue=[bad] * 3)) as server:
        r = run_code(server, proj, "--max-attempts", "6", "--concurrency", "1")
        assert server.calls == SEGMENTS - 1 + 3  # three malformed replies end the segment, not six
        assert r.returncode == 3, r.stderr
        # the model itself failed it: at temperature 0 the same prompt gets the same reply, so a re-run does not ask
        server.log.clear()
        again = run_code(server, proj)
        assert server.calls == 0 and again.returncode == 3 and json.loads(again.stdout)["already_finished"]
        # at a temperature above 0 another sample may do: the re-run asks again for that segment only
        server.set_plan(Plan(queue=[bad] * 3))
        hot = run_code(server, proj, "--temperature", "0.7", "--concurrency", "1")
        assert hot.returncode == 3 and server.calls == SEGMENTS - 1 + 3
        server.log.clear()
        hot = run_code(server, proj, "--temperature", "0.7")
        assert hot.returncode == 0 and server.calls == 1 and json.loads(hot.stdout)["resumed"]


# -- item 7: two commands on one run ---------------------------------------------------------------------------------
def test_two_identical_code_commands_at_once(proj):
    with FakeOpenAIServer(Plan(latency=0.1)) as server:
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        cmd = code_cmd(server, proj, "--concurrency", "2")
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        second = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        outs = [p.communicate(timeout=90) for p in (first, second)]
        codes = [first.returncode, second.returncode]
        calls = server.calls
    for out, err in outs:
        no_traceback(out, err)
    # each either coded, found it finished, or refused in one line while the other held the run
    for code, (out, err) in zip(codes, outs):
        if code == 0:
            assert json.loads(out)["counts"]["ok"] == SEGMENTS
        else:
            assert code == 1, err
            lines = [line for line in err.splitlines() if line.strip()]
            assert len(lines) == 1 and "is being coded by process" in lines[0], err
    assert 0 in codes
    assert rows(proj, "SELECT count(*), min(status) FROM runs") == [(1, "finished")]
    assert rows(proj, "SELECT count(*), count(DISTINCT segment_id) FROM run_segments") == [(SEGMENTS, SEGMENTS)]
    assert calls == SEGMENTS  # nothing paid twice


def test_a_run_whose_process_died_is_resumed_and_a_live_one_refused(proj):
    with FakeOpenAIServer(Plan(latency=1.0)) as server:  # slow enough that it is still running at the kill
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        child = subprocess.Popen(code_cmd(server, proj, "--concurrency", "1"), env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                try:
                    if rows(proj, "SELECT count(*) FROM run_segments")[0][0] >= 3:
                        break
                except sqlite3.OperationalError:
                    pass
                time.sleep(0.05)
            # while it runs, the same command is refused in one line, and changes nothing
            busy = run_code(server, proj, limit=60)
            assert busy.returncode == 1, busy.stderr
            assert "is being coded by process" in busy.stderr and len(busy.stderr.strip().splitlines()) == 1
            no_traceback(busy.stderr)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.communicate(timeout=30)
        assert rows(proj, "SELECT status FROM runs") == [("running",)]
        listed = subprocess.run([sys.executable, "-m", "assistcode", "runs", "list", "--project", str(proj)],
                                capture_output=True, text=True, timeout=60)
        assert " died " in listed.stdout, listed.stdout  # not "running": its process is gone
        done_before = rows(proj, "SELECT count(*) FROM run_segments")[0][0]
        server.set_plan(Plan())
        server.log.clear()
        r = run_code(server, proj, limit=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["resumed"] and out["counts"]["ok"] == SEGMENTS
    assert server.calls <= SEGMENTS - done_before + 1  # at most the call in flight at the kill is paid again
    assert rows(proj, "SELECT count(*), count(DISTINCT segment_id) FROM run_segments") == [(SEGMENTS, SEGMENTS)]
    assert rows(proj, "SELECT status FROM runs") == [("finished",)]


def test_a_provider_without_its_own_deadline_is_cut_at_the_timeout(tmp_path):
    """langchain and plugin providers: the engine keeps --timeout as the call's total deadline."""
    import asyncio

    from assistcode.providers.base import Reply
    from assistcode.runs.engine import RunConfig, code_project

    class Hanging:
        name, model = "hanging", "h"

        def __init__(self) -> None:
            self.calls = 0

        async def complete(self, messages, options):  # noqa: ANN001, ANN201
            self.calls += 1
            if self.calls == 1:
                await asyncio.sleep(3600)
            return Reply('{"codes": []}', 10, 5)

        def describe(self):  # noqa: ANN201
            return {"provider": self.name, "model": self.model}

        async def aclose(self) -> None:
            return None

    def too_long(*_: object) -> None:
        raise TimeoutError("the call outlived its deadline")

    project = make_project(tmp_path, n_docs=1, turns=2)
    provider = Hanging()
    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(60)  # the hard limit of this probe
    try:
        r = code_project(project, RunConfig(provider="hanging", model="h", timeout=0.5, backoff_cap=0.05, concurrency=1),
                         provider=provider)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        project.close()
    assert r.counts["ok"] == 2 and provider.calls == 3
    assert time.monotonic() - start < 30

"""A second process holding the store's write lock (a long import) while ``code`` runs: replies are kept until
the store takes them, or in a side file the next run stores; nothing paid for is lost, no traceback (issue 13 item 6)."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistcode.testing import FakeOpenAIServer, Plan
from tests.runs.conftest import make_project

KEY = "sk-test-busy-0123456789"
SEGMENTS = 24
CODES = 3
HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('busy_test', 'held')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    make_project(tmp_path).close()
    return tmp_path / "proj"


def count(proj: Path, sql: str) -> int:
    db = sqlite3.connect(proj / "assistcode.db")
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


def start_code(server: FakeOpenAIServer, proj: Path, wait: str, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "assistcode", "code", "--provider", "openai", "--model", "fake", "--base-url",
           server.base_url, "--project", str(proj), "--json", "--concurrency", "1", *extra]
    env = {**os.environ, "OPENAI_API_KEY": KEY, "ASSISTCODE_STORE_WAIT": wait}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def hold_lock(proj: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process takes the write lock and keeps it ``seconds``, as a long import does."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(proj / "assistcode.db"), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def wait_for_rows(proj: Path, n: int, limit: float = 40) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if count(proj, "SELECT count(*) FROM run_segments") >= n:
                return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} segments coded after {limit} s")


@pytest.mark.parametrize("template", ["deductive", "score-per-code"])
def test_a_lock_held_past_the_store_wait_does_not_crash_a_run_or_lose_a_reply(proj, template):
    with FakeOpenAIServer(Plan(latency=0.15)) as server:
        child = start_code(server, proj, "1", "--template", template)  # the store's wait: 1 s; the lock is held 4 s
        try:
            wait_for_rows(proj, 3)
            holder = hold_lock(proj, 4)
            out, err = child.communicate(timeout=90)
            holder.wait(timeout=30)
        finally:
            child.kill()
        calls = server.calls
    assert "Traceback" not in err and "database is locked" not in err, err
    assert child.returncode == 0, err
    assert json.loads(out)["counts"]["ok"] == SEGMENTS
    extra = 3 if template.startswith("score") else 0  # the content-free inputs, scored once per run
    per_call = 1 if template == "deductive" else CODES  # the openai path asks one question per code
    assert calls == (SEGMENTS + extra) * per_call  # every reply paid once: nothing asked again
    assert count(proj, "SELECT count(*) FROM call_cache") == SEGMENTS + extra  # every reply paid for is stored
    assert count(proj, "SELECT count(DISTINCT segment_id) FROM run_segments WHERE status = 'ok'") == SEGMENTS
    assert count(proj, "SELECT count(*) FROM run_segments") == SEGMENTS


def test_a_lock_held_past_the_run_keeps_paid_replies_in_a_side_file(proj):
    with FakeOpenAIServer(Plan(latency=0.1)) as server:
        child = start_code(server, proj, wait="1")
        try:
            wait_for_rows(proj, 2)
            holder = hold_lock(proj, 25)  # longer than the rest of the run and its final wait
            out, err = child.communicate(timeout=90)
        finally:
            child.kill()
        assert child.returncode == 1, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "store stayed busy" in lines[0] and "paid replies kept in" in lines[0], err
        side = list((proj / ".assistcode" / "unstored").glob("replies-*.jsonl"))
        assert len(side) == 1
        kept = len(side[0].read_text().splitlines())
        holder.kill()
        holder.wait(timeout=30)
        paid = server.calls
        assert paid == SEGMENTS and kept >= SEGMENTS - 3 - 2  # all but those stored before the lock

        # the lock is gone: the same command stores the kept replies and codes the rest from them, paying nothing
        server.log.clear()
        again = start_code(server, proj, wait="5")
        out, err = again.communicate(timeout=90)
        assert server.calls == 0
    assert again.returncode == 0, err
    result = json.loads(out)
    assert result["resumed"] and result["counts"]["ok"] == SEGMENTS and result["cache_hits"] >= kept
    assert not list((proj / ".assistcode" / "unstored").glob("*"))
    assert count(proj, "SELECT count(*) FROM run_segments") == SEGMENTS


def test_a_command_that_cannot_start_on_a_busy_store_says_so_in_one_line(proj):
    with FakeOpenAIServer(Plan()) as server:
        holder = hold_lock(proj, 15)
        try:
            child = start_code(server, proj, wait="1")
            out, err = child.communicate(timeout=60)
        finally:
            holder.kill()
            holder.wait(timeout=30)
        assert server.calls == 0
    assert child.returncode == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "store is busy" in lines[0], err

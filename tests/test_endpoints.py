"""Several endpoints (``--base-url A --base-url B``) against real testing-server processes."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from typing import Any, Iterator

import pytest

from assistcode.errors import InputError
from assistcode.providers.base import CallOptions, TransientError
from assistcode.providers.endpoints import EndpointPool
from assistcode.runs.engine import RunConfig, code_project

from .runs.conftest import make_project


class Served:
    """A testing server in its own process: ``base_url``, ``plan(**kw)``, ``log()``."""

    def __init__(self, proc: subprocess.Popen, base_url: str) -> None:
        self.proc, self.base_url = proc, base_url
        self.root = base_url.rsplit("/v1", 1)[0]

    def plan(self, **plan: Any) -> None:
        req = urllib.request.Request(self.root + "/_control/plan", json.dumps(plan).encode(),
                                     {"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()

    def log(self) -> list[dict[str, Any]]:
        return json.loads(urllib.request.urlopen(self.root + "/_control/log", timeout=30).read())

    def calls(self) -> int:
        return sum(1 for e in self.log() if e["kind"] == "chat")


@contextmanager
def served(**plan: Any) -> Iterator[Served]:
    """Start ``python -m assistcode.testing.server`` with ``plan``; stop it at the end."""
    proc = subprocess.Popen([sys.executable, "-m", "assistcode.testing.server", "--plan", json.dumps(plan)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        yield Served(proc, json.loads(line)["base_url"])
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def two():
    with served() as a, served() as b:
        yield a, b


@pytest.fixture
def proj(tmp_path):
    p = make_project(tmp_path, n_docs=4, turns=10)
    yield p
    p.close()


def test_calls_spread_over_both_endpoints_and_each_segment_names_its_endpoint(proj, two):
    a, b = two
    r = code_project(proj, RunConfig(provider="openai", model="fake", base_url=a.base_url, replicas=(b.base_url,),
                                     concurrency=8))
    assert r.counts["ok"] == 40 and r.calls == 40
    got_a, got_b = a.calls(), b.calls()
    assert got_a + got_b == 40 and got_a >= 10 and got_b >= 10  # both carried a fair share, not one alone
    rows = dict(proj.db.execute("SELECT endpoint, count(*) FROM run_segments GROUP BY endpoint").fetchall())
    assert rows == {a.base_url: got_a, b.base_url: got_b}
    stats = {e["url"]: e for e in r.run.manifest["provider"]["endpoints"]}
    assert stats[a.base_url]["answered"] == got_a and stats[b.base_url]["answered"] == got_b
    # the first URL names the run: the same run resumes (finished here) on the first endpoint alone
    again = code_project(proj, RunConfig(provider="openai", model="fake", base_url=a.base_url))
    assert again.already_finished and a.calls() == got_a


def test_an_endpoint_that_keeps_failing_is_rested_and_the_run_finishes_on_the_other(proj, two):
    a, b = two
    b.plan(rate_500=1.0)
    r = code_project(proj, RunConfig(provider="openai", model="fake", base_url=a.base_url, replicas=(b.base_url,),
                                     concurrency=2, backoff_base=0.01, backoff_cap=0.05))
    assert r.counts["ok"] == 40 and r.counts["failed"] == 0
    # three failures in a row rest it (15 s, longer than this run): no fourth call reaches it
    assert b.calls() == 3
    assert proj.db.execute("SELECT count(*) FROM run_segments WHERE endpoint = ?", (b.base_url,)).fetchone()[0] == 0
    stats = {e["url"]: e for e in r.run.manifest["provider"]["endpoints"]}
    assert stats[b.base_url]["rests"] == 1 and stats[b.base_url]["failures"] == 3 and stats[b.base_url]["answered"] == 0


def test_a_rested_endpoint_is_tried_again_after_its_rest(two):
    a, b = two
    b.plan(queue=[{"status": 500}] * 3)  # three failures, then healthy again
    pool = EndpointPool([b.base_url, a.base_url], "fake", rest_s=0.4)
    messages = [{"role": "user", "content": "segment about safety"}]

    async def go() -> list[str]:
        seen = []

        async def one() -> None:
            try:
                seen.append((await pool.complete(messages, CallOptions())).endpoint)
            except TransientError:
                seen.append("failed")

        for _ in range(7):  # one call at a time: the least used endpoint that is awake takes it
            await one()
        await asyncio.sleep(0.5)  # b's rest is over
        for _ in range(3):
            await one()
        await pool.aclose()
        return seen

    seen = asyncio.run(go())
    # b fails three times in a row (a answers in between) and is rested: a alone answers while it rests
    assert seen[:7] == ["failed", a.base_url, "failed", a.base_url, "failed", a.base_url, a.base_url]
    assert seen[7:] == [b.base_url, b.base_url, a.base_url]  # awake again and answering, until the use evens out
    assert {e["url"]: e["rests"] for e in pool.describe()["endpoints"]}[b.base_url] == 1


def test_every_endpoint_obeys_local_only_before_anything_is_sent(tmp_path, run, two):
    a, _ = two
    proj = make_project(tmp_path)
    proj.close()
    r = run("code", "--provider", "openai", "--model", "fake", "--base-url", a.base_url, "--base-url",
            "https://api.example.com/v1", "--local-only", "--project", tmp_path / "proj")
    assert r.code == 2
    assert "--local-only refuses the endpoint https://api.example.com/v1" in r.err
    assert a.calls() == 0
    r = run("code", "--provider", "openai", "--model", "fake", "--base-url", a.base_url, "--base-url",
            a.base_url + "/", "--project", tmp_path / "proj")
    assert r.code == 2 and "given twice" in r.err and a.calls() == 0
    r = run("runs", "list", "--project", tmp_path / "proj")
    assert "run1" not in r.out


def test_the_cli_takes_several_base_urls(tmp_path, run, two):
    a, b = two
    make_project(tmp_path).close()
    r = run("code", "--provider", "openai", "--model", "fake", "--base-url", a.base_url, "--base-url", b.base_url,
            "--json", "--project", tmp_path / "proj")
    assert r.code == 0, r.err
    assert r.json()["counts"]["ok"] == 24 and a.calls() > 0 and b.calls() > 0


def test_an_empty_endpoint_is_refused():
    with pytest.raises(InputError, match="empty endpoint"):
        EndpointPool(["http://127.0.0.1:9/v1", " "], "fake")

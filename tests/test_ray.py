"""The Ray executor on a local cluster (2 CPUs, one for the whole module), against testing-server processes."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from assistcode.runs.engine import Engine, RunConfig, code_project

from .conftest import need
from .runs.conftest import make_project
from .test_endpoints import served


KEY_VARIABLE, KEY = "ASSISTCODE_TEST_RAY_KEY", "sk-ray-test-0123456789"


@pytest.fixture(scope="module")
def ray_cluster():
    ray = need("ray", "the Ray executor (assistcode[ray])")
    from assistcode.runs.ray_executor import connect

    os.environ[KEY_VARIABLE] = KEY  # before the cluster starts: its workers inherit this environment
    connect(None)  # the local cluster every test here shares
    yield ray
    ray.shutdown()


@pytest.fixture
def proj(tmp_path):
    p = make_project(tmp_path, n_docs=6, turns=20)  # 120 segments
    yield p
    p.close()


def ray_config(*urls: str, **kw) -> RunConfig:
    return RunConfig(provider="openai", model="fake", base_url=urls[0], replicas=tuple(urls[1:]), executor="ray",
                     concurrency=16, backoff_base=0.01, backoff_cap=0.05, **kw)


def counts(proj) -> tuple[int, int]:
    return tuple(proj.db.execute("SELECT count(*), count(DISTINCT segment_id) FROM run_segments").fetchone())


def test_workers_make_the_calls_and_the_cache_is_consulted_before_anything_is_sent(ray_cluster, proj):
    with served(latency=0.01) as a, served(latency=0.01) as b:
        # a third of the corpus paid for first, by this process alone
        first = [s.id for s in proj.segments()[:40]]
        code_project(proj, RunConfig(provider="openai", model="fake", base_url=a.base_url), segment_ids=first)
        asked_before = {e["last_message"] for e in a.log()}
        assert len(asked_before) == 40
        r = code_project(proj, ray_config(a.base_url, b.base_url))
        assert r.counts["ok"] == 120 and r.calls == 80 and r.cache_hits == 40
        asked_now = [e["last_message"] for e in a.log()[40:] + b.log()]
        assert len(asked_now) == 80 and not asked_before & set(asked_now)  # nothing already paid for was sent
        executor = r.run.manifest["provider"]["executor"]
        assert executor["name"] == "ray" and executor["workers"] == 2 and executor["batches_rerun"] == 0
        # the calls were made in the workers, not here: each segment names the endpoint that answered it
        by_endpoint = dict(proj.db.execute("SELECT endpoint, count(*) FROM run_segments WHERE run_id = ? "
                                           "GROUP BY endpoint", (r.run.id,)).fetchall())
        assert by_endpoint.get(b.base_url, 0) == b.calls() > 0
        assert {e["url"]: e["answered"] for e in r.run.manifest["provider"]["endpoints"]}[b.base_url] == b.calls()


def test_a_worker_killed_mid_run_has_its_batch_run_elsewhere_and_nothing_is_stored_twice(ray_cluster, proj, capfd):
    from assistcode.runs.ray_executor import RayProvider

    with served(latency=0.3) as a:
        config = ray_config(a.base_url)
        engine = Engine(proj.db, proj.codebook(), config, project_dir=proj.path)
        provider = engine.provider
        assert isinstance(provider, RayProvider)
        victim = provider.worker_pids()[0]
        done: dict = {}
        thread = threading.Thread(target=lambda: done.update(r=code_project(proj, config, provider=provider)))
        thread.start()
        deadline = time.time() + 60
        while a.calls() < 30 and time.time() < deadline:  # mid-run: batches in flight on both workers
            time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)
        thread.join(120)
        r = done["r"]
        assert r.counts["ok"] == 120 and r.counts["failed"] == 0
        assert counts(proj) == (120, 120)  # each segment once
        assert provider.workers_lost >= 1 and provider.batches_rerun >= 1
        assert r.run.manifest["provider"]["executor"]["batches_rerun"] >= 1
        time.sleep(1.0)  # Ray's notice of the dead worker arrives on its own thread
        assert "(raylet)" not in capfd.readouterr().out  # stdout stays the command's (--json)
        # the dead worker's batch was asked again: more calls than segments, never more rows
        assert a.calls() > 120
        assert proj.db.execute("SELECT segment_id, code FROM annotations WHERE coder = ? GROUP BY segment_id, code "
                               "HAVING count(*) > 1", (r.run.coder,)).fetchall() == []


def test_an_unreachable_ray_address_is_one_line_and_exit_2_before_anything_is_sent(tmp_path, run):
    make_project(tmp_path).close()
    with served() as a:
        r = run("code", "--provider", "openai", "--model", "fake", "--base-url", a.base_url, "--executor", "ray",
                "--ray-address", "127.0.0.1:9", "--project", tmp_path / "proj")
        assert r.code == 2
        lines = [line for line in r.err.splitlines() if line.strip()]
        assert len(lines) == 1 and "cannot reach the Ray cluster at 127.0.0.1:9" in lines[0]
        assert a.calls() == 0
    assert "run1" not in run("runs", "list", "--project", tmp_path / "proj").out


def test_scoring_templates_score_through_the_workers(ray_cluster, tmp_path):
    proj = make_project(tmp_path, n_docs=2, turns=5)
    with served() as a:
        r = code_project(proj, ray_config(a.base_url, template="score-per-code"))
        assert r.counts["ok"] == 10 and r.counts["failed"] == 0
        assert r.run.manifest["provider"]["executor"]["batches"] >= 1
        # each segment's three yes/no questions reached the server from a worker, with log-probabilities asked for
        asked = [e for e in a.log() if e["kind"] == "chat"]
        assert len(asked) >= 30
        coded = dict(proj.db.execute("SELECT s.text, group_concat(a.code) FROM segments s JOIN annotations a "
                                     "ON a.segment_id = s.id AND a.coder = ? GROUP BY s.id", (r.run.coder,)).fetchall())
        assert any("safety" in (codes or "") for text, codes in coded.items() if "safety" in text)
    proj.close()


def test_the_cli_runs_on_ray(ray_cluster, tmp_path, run):
    make_project(tmp_path, n_docs=2, turns=5).close()
    with served() as a:
        r = run("code", "--provider", "openai", "--model", "fake", "--base-url", a.base_url, "--ray-address",
                "127.0.0.1:9", "--project", tmp_path / "proj")
        assert r.code == 2 and "--ray-address goes with --executor ray" in r.err and a.calls() == 0
        r = run("code", "--provider", "openai", "--model", "fake", "--base-url", a.base_url, "--executor", "ray",
                "--json", "--project", tmp_path / "proj")
        assert r.code == 0, r.err
        assert r.json()["counts"]["ok"] == 10 and a.calls() == 10
    from assistcode.project import Project
    from assistcode.runs import store as rs

    with Project(tmp_path / "proj") as p:
        assert rs.get_run(p.db, 1).manifest["provider"]["executor"]["name"] == "ray"


def test_the_api_key_is_read_by_the_workers_from_their_environment_never_sent_through_ray(ray_cluster, proj):
    from assistcode.errors import InputError
    from assistcode.runs.ray_executor import RayProvider

    with served(latency=0.0) as a:
        config = ray_config(a.base_url, api_key=KEY)
        provider = RayProvider(config, {"base_url": a.base_url, "api_key": KEY})
        assert KEY not in repr(provider._spec) and KEY_VARIABLE in provider._spec  # what goes to the actors
        r = code_project(proj, config, segment_ids=[s.id for s in proj.segments()[:3]])
        assert r.counts["ok"] == 3
        assert {e["auth"] for e in a.log()} == {f"Bearer {KEY}"[:12]}  # the workers did send the key
        with pytest.raises(InputError, match="must come from an environment variable"):
            RayProvider(ray_config(a.base_url), {"base_url": a.base_url, "api_key": "sk-nowhere-in-the-environment"})

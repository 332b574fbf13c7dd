"""A researcher's day through the real entry point (issue 14): safe defaults, clear errors, reports that say
whose row is whose, exports a reader can follow. In-process through ``assistcode.cli:main`` (the ``run`` fixture)
or as a subprocess where the environment itself is under test."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistcode.testing import FakeOpenAIServer, Plan

from .runs.conftest import make_project

# Loaded by the child interpreter before anything else: every connection to a host that is not on the loopback
# interface is refused and written down, so a test can assert that nothing tried to leave the machine.
GUARD = textwrap.dedent('''
    import os, socket
    _connect = socket.socket.connect
    def _guarded(self, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            with open(os.environ["ASSISTCODE_TEST_NET_LOG"], "a") as fh:
                fh.write(f"{host}\\n")
            raise OSError("network refused by the test guard")
        return _connect(self, address)
    socket.socket.connect = _guarded
    _getaddrinfo = socket.getaddrinfo
    def _lookup(host, *args, **kwargs):
        if host not in (None, "127.0.0.1", "::1", "localhost"):
            with open(os.environ["ASSISTCODE_TEST_NET_LOG"], "a") as fh:
                fh.write(f"lookup {host}\\n")
            raise socket.gaierror("name lookup refused by the test guard")
        return _getaddrinfo(host, *args, **kwargs)
    socket.getaddrinfo = _lookup
''')


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Run ``assistcode`` as a child process that cannot reach any host but this one: no key, no endpoint in the
    environment, every proxy pointed at a closed loopback port, and a guard that logs any other connection."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    net_log = tmp_path / "net.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "ASSISTCODE_", "AZURE_", "ANTHROPIC_")) and "proxy" not in k.lower()}
    env.update(PYTHONPATH=str(guard), ASSISTCODE_TEST_NET_LOG=str(net_log), HTTP_PROXY="http://127.0.0.1:9",
               HTTPS_PROXY="http://127.0.0.1:9", ALL_PROXY="http://127.0.0.1:9", NO_PROXY="127.0.0.1,localhost")

    def _run(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "assistcode", *map(str, args)], env={**env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=180, cwd=tmp_path)

    _run.net_log = net_log  # type: ignore[attr-defined]
    return _run


def _runs(proj: Path) -> int:
    db = sqlite3.connect(proj / "assistcode.db")
    try:
        return db.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        db.close()


# -- item 4: the default provider is local; a remote endpoint only when named ---------------------------------------
def test_a_remote_model_name_alone_sends_nothing_anywhere(tmp_path, offline):
    make_project(tmp_path).close()
    proj = tmp_path / "proj"
    with FakeOpenAIServer(Plan()) as server:
        r = offline("code", "--model", "gpt-4o-mini", "--project", proj)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "gpt-4o-mini" in r.stderr and "--provider openai" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        # --provider openai without a key or an endpoint is refused too, before any connection
        r = offline("code", "--provider", "openai", "--model", "gpt-4o-mini", "--project", proj)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "--base-url" in r.stderr and "OPENAI_API_KEY" in r.stderr
        assert server.calls == 0
    assert not offline.net_log.exists(), offline.net_log.read_text()
    assert _runs(proj) == 0  # nothing written


def test_a_named_endpoint_is_used_and_a_run_that_fails_everywhere_exits_4(tmp_path, offline):
    make_project(tmp_path, n_docs=1, turns=4).close()
    proj = tmp_path / "proj"
    with FakeOpenAIServer(Plan()) as server:
        r = offline("code", "--provider", "OpenAI", "--model", "fake", "--base-url", server.base_url, "--project", proj)
        assert r.returncode == 0, r.stderr
        assert server.calls == 4
    with FakeOpenAIServer(Plan(queue=[{"status": 400, "body": {"error": {"message": "no such model"}}}] * 10)) as server:
        r = offline("code", "--provider", "openai", "--model", "fake-2", "--base-url", server.base_url,
                    "--max-attempts", "1", "--project", proj)
        assert r.returncode == 4, r.stdout + r.stderr
        assert "every segment failed" in r.stderr and "runs show" in r.stderr
        assert server.calls == 4
    assert not offline.net_log.exists(), offline.net_log.read_text()


# -- item 5: the provider is checked first, case-insensitively, against every registered provider -----------------
def test_a_misspelt_provider_is_named_with_every_provider(run, tmp_path):
    proj = tmp_path / "proj"
    r = run("code", "--provider", "opneai", "--project", proj)
    assert r.code == 2
    assert "unknown provider 'opneai'" in r.err and "--model" not in r.err
    for name in ("local", "openai", "similarity", "langchain", "mock"):
        assert name in r.err
    assert not proj.exists()

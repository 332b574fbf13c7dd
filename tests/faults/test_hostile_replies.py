"""Hostile servers and replies through the real command line against the real local server (issue 13, items 2, 3,
4, 11 and 13): redirects off the host, HTML with HTTP 200, replies nested thousands of levels deep, replies of
hundreds of megabytes, secrets echoed in replies, and project templates that try to run code or hide a shipped
one. Each ``assistcode code`` runs in a subprocess under a hard time limit (and an address-space limit for huge
replies); every failure must be a segment failed with its reason, never a traceback or a run left ``running``."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from assistcode.testing import FakeOpenAIServer, Plan
from tests.runs.conftest import make_project

from . import assert_refused, cli, hostile

SECRET = "sk-live-hostile-0123456789abcdef"
SEGMENTS = 4  # make_project(n_docs=1, turns=4)


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    make_project(tmp_path, n_docs=1, turns=SEGMENTS).close()
    return tmp_path / "proj"


def code(server: FakeOpenAIServer, proj: Path, *extra: str, timeout: float = 90, memory_mb: int | None = None):  # noqa: ANN201
    return cli("code", "--provider", "openai", "--model", "fake", "--base-url", server.base_url, "--api-key-env",
               "HOSTILE_KEY", "--max-attempts", "2", "--timeout", "20", "--concurrency", "2", *extra,
               "--project", proj, timeout=timeout, memory_mb=memory_mb, env={"HOSTILE_KEY": SECRET})


def outcomes(proj: Path) -> tuple[list[str], list[tuple[str, str | None]]]:
    """The runs' statuses, and each segment's (status, reason)."""
    db = sqlite3.connect(proj / "assistcode.db")
    try:
        runs = [r[0] for r in db.execute("SELECT status FROM runs")]
        segs = [(r[0], r[1]) for r in db.execute("SELECT status, reason FROM run_segments")]
        return runs, segs
    finally:
        db.close()


def assert_every_segment_failed(p, proj: Path, needle: str) -> None:  # noqa: ANN001
    """No traceback; every segment failed with a reason holding ``needle``; the run is not left running; exit 4."""
    assert "Traceback" not in p.err, p.err[-3000:]
    runs, segs = outcomes(proj)
    assert runs and "running" not in runs, runs
    assert len(segs) == SEGMENTS and all(s == "failed" for s, _ in segs), segs
    assert all(needle in (r or "") for _, r in segs), segs
    assert p.code == 4, (p.code, p.err[-2000:])


# ---- item 2: redirects -------------------------------------------------------------------------------------------

def _redirect_to(other: FakeOpenAIServer, status: int) -> dict:
    return {"status": status, "headers": {"Location": other.base_url + "/chat/completions"}, "body": {"moved": True}}


@pytest.mark.parametrize("status", [307, 308, 302, 301, 303])
def test_with_local_only_no_redirect_is_followed(status: int, proj: Path) -> None:
    with FakeOpenAIServer() as elsewhere, FakeOpenAIServer(Plan(queue=[_redirect_to(elsewhere, status)] * 20)) as server:
        p = code(server, proj, "--local-only")
        assert_every_segment_failed(p, proj, "not followed with --local-only")
        assert elsewhere.log == []  # not one request reached the other host, with or without a body


@pytest.mark.parametrize("status", [307, 308])
def test_a_redirect_to_another_host_is_never_followed_with_the_body(status: int, proj: Path) -> None:
    with FakeOpenAIServer() as elsewhere, FakeOpenAIServer(Plan(queue=[_redirect_to(elsewhere, status)] * 20)) as server:
        p = code(server, proj)
        assert_every_segment_failed(p, proj, "another host")
        assert elsewhere.log == []


def test_langchain_with_local_only_follows_no_redirect(proj: Path) -> None:
    """The OpenAI chat model of LangChain gets the same guarded HTTP client as the openai provider."""
    pytest.importorskip("langchain_openai", reason="the langchain extra is not installed")
    with FakeOpenAIServer() as elsewhere, FakeOpenAIServer(Plan(queue=[_redirect_to(elsewhere, 307)] * 20)) as server:
        p = cli("code", "--provider", "langchain", "--chat-model", "langchain_openai:ChatOpenAI", "--model", "fake",
                "--base-url", server.base_url, "--api-key-env", "HOSTILE_KEY", "--max-attempts", "2", "--local-only",
                "--project", proj, timeout=120, env={"HOSTILE_KEY": SECRET})
        assert_every_segment_failed(p, proj, "not followed with --local-only")
        assert elsewhere.log == []


def test_a_redirect_that_drops_the_body_carries_no_transcript_and_no_key(proj: Path) -> None:
    """303 turns the POST into a GET: the other host may see the GET, never the transcript or the key."""
    with FakeOpenAIServer() as elsewhere, FakeOpenAIServer(Plan(queue=[_redirect_to(elsewhere, 303)] * 20)) as server:
        p = code(server, proj)
        assert "Traceback" not in p.err
        assert elsewhere.calls == 0  # no chat request (a POST with a body) arrived there
        assert "running" not in outcomes(proj)[0]


# ---- item 11: bodies that are not chat completions ---------------------------------------------------------------

def test_html_with_http_200_fails_each_segment_with_a_reason(proj: Path) -> None:
    with FakeOpenAIServer(Plan(queue=[{"raw": hostile.html_page()}] * 20)) as server:
        p = code(server, proj)
    assert_every_segment_failed(p, proj, "not a chat completion")


def test_a_reply_nested_thousands_of_levels_deep_fails_with_a_reason(proj: Path) -> None:
    with FakeOpenAIServer(Plan(queue=[{"content": hostile.deep_reply()}] * 20)) as server:
        p = code(server, proj)
    assert_every_segment_failed(p, proj, "nested")


def test_a_body_nested_thousands_of_levels_deep_fails_with_a_reason(proj: Path) -> None:
    deep = '{"choices": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with FakeOpenAIServer(Plan(queue=[{"raw": deep, "content_type": "application/json"}] * 20)) as server:
        p = code(server, proj)
    assert_every_segment_failed(p, proj, "nested")


# ---- item 13: reply size ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("chunked,needle", [(False, "refused (not read)"), (True, "not read further")],
                         ids=["declared", "streamed"])
def test_a_huge_reply_is_refused_unread_in_bounded_memory(chunked: bool, needle: str, proj: Path) -> None:
    huge = {"huge": 200_000_000, "content_type": "application/json", "chunked": chunked}
    with FakeOpenAIServer(Plan(queue=[huge] * 20)) as server:
        p = code(server, proj, timeout=120, memory_mb=1536)
    assert_every_segment_failed(p, proj, needle)


def test_a_reply_text_over_the_cap_fails_with_a_reason(proj: Path) -> None:
    content = '{"codes": [{"code": "safety", "rationale": "' + "x" * 5_000_000 + '"}]}'
    with FakeOpenAIServer(Plan(queue=[{"content": content}] * 20)) as server:
        p = code(server, proj, timeout=120)
    assert_every_segment_failed(p, proj, "over the cap")


# ---- item 4: secrets echoed in a 200 reply ---------------------------------------------------------------------------

def test_a_key_echoed_in_a_reply_is_stored_and_exported_nowhere(proj: Path, tmp_path: Path) -> None:
    plain = hostile.echoing_reply(SECRET, "safety")
    escaped = plain.replace(SECRET, "\\u0073" + SECRET[1:])  # the same key, its first letter a JSON escape
    assert SECRET not in escaped
    replies = [{"content": plain}, {"content": escaped}]
    with FakeOpenAIServer(Plan(queue=replies * 10)) as server:
        p = code(server, proj)
    assert p.code == 0 and "Traceback" not in p.err, p.err
    db = sqlite3.connect(proj / "assistcode.db")
    try:
        stored = db.execute("SELECT count(*) FROM annotations WHERE rationale LIKE '%***%'").fetchone()[0]
    finally:
        db.close()
    assert stored == SEGMENTS  # the rationales are kept, with the key blanked
    assert cli("export", "annotations", "--output", tmp_path / "a.csv", "--project", proj).code == 0
    assert cli("export", "qdpx", "--output", tmp_path / "a.qdpx", "--project", proj).code == 0
    for f in [*proj.rglob("*"), tmp_path / "a.csv", tmp_path / "a.qdpx"]:
        if f.is_file():
            data = f.read_bytes()
            if f.suffix == ".qdpx":
                import zipfile

                with zipfile.ZipFile(f) as z:
                    data = b"".join(z.read(n) for n in z.namelist())
            assert SECRET.encode() not in data, f
            assert SECRET[1:].encode() not in data, f  # nor the escaped one, once parsed


def test_a_key_echoed_in_candidate_codes_is_stored_nowhere(proj: Path) -> None:
    import json

    reply = json.dumps({"candidates": [{"name": f"code {SECRET}", "definition": f"uses {SECRET}",
                                        "evidence": SECRET, "confidence": 0.5}]})
    with FakeOpenAIServer(Plan(queue=[{"content": reply}] * 20)) as server:
        p = code(server, proj, "--template", "inductive")
    assert p.code == 0 and "Traceback" not in p.err, p.err
    db = sqlite3.connect(proj / "assistcode.db")
    try:
        names = [r[0] for r in db.execute("SELECT name FROM candidates")]
    finally:
        db.close()
    assert names and all(n == "code ***" for n in names), names
    for f in proj.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f


# ---- item 3: project templates ------------------------------------------------------------------------------------

EVIL = """name: evil
version: 1
description: Tries to reach Python's classes.
messages:
  - role: user
    content: "{{ ''.__class__.__mro__[1].__subclasses__() }} {{ segment.text }}"
"""
MUTATING = """name: mutating
version: 1
description: Tries to change the codebook it is given.
messages:
  - role: user
    content: "{{ codes.append({'id': 'x'}) }} {{ segment.text }}"
"""


@pytest.mark.parametrize("text,name", [(EVIL, "evil"), (MUTATING, "mutating")])
def test_a_project_template_cannot_reach_outside_the_sandbox(text: str, name: str, proj: Path) -> None:
    (proj / "prompts").mkdir()
    (proj / "prompts" / f"{name}.yaml").write_text(text)
    with FakeOpenAIServer() as server:
        p = code(server, proj, "--template", name)
        assert server.calls == 0
    assert_refused(p, f"template {name!r}", "prompts/")
    assert "subclasses" not in p.err or "__subclasses__" not in p.out


def test_a_project_template_that_hides_a_shipped_one_says_which_file(proj: Path) -> None:
    shipped = cli("prompts", "show", "deductive").out
    (proj / "prompts").mkdir()
    (proj / "prompts" / "mine.yaml").write_text(shipped)
    with FakeOpenAIServer() as server:
        p = code(server, proj, "--template", "deductive")
    assert p.code == 0, p.err
    warning = [ln for ln in p.err.splitlines() if ln.startswith("warning: template 'deductive'")]
    assert len(warning) == 1 and str(proj / "prompts" / "mine.yaml") in warning[0], p.err
    listed = cli("prompts", "list", "--project", proj)
    assert str(proj / "prompts" / "mine.yaml") in listed.err

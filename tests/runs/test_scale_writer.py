"""The writer of a long run (issue 15's measured targets): its memory does not grow with the corpus, and each
segment costs one commit."""
import gc
import sqlite3

import pytest

from assistcode.corpus import context_text, iter_segments, preceding
from assistcode.model import Segment
from assistcode.providers.base import ProviderError
from assistcode.providers.mock import MockProvider, keyword_reply
from assistcode.runs import store as rs
from assistcode.runs.engine import RunConfig, code_project
from assistcode.runs.pending import PendingWrites
from assistcode.runs.selection import CHUNK, StoredContexts, StoredSegments
from assistcode.store.db import CACHE_KIB, RUN_CACHE_KIB, connect, transaction

from .conftest import make_project


def test_a_run_codes_with_a_page_cache_of_a_few_mib_and_gives_the_connection_its_own_back(tmp_path):
    # a cache keeps every page its connection writes: with the store's 64 MiB a long run's memory grew with its store
    project = make_project(tmp_path, n_docs=2, turns=3)
    seen: list[int] = []

    def reply(messages):
        seen.append(project.db.execute("PRAGMA cache_size").fetchone()[0])
        return keyword_reply(messages)

    code_project(project, RunConfig(provider="mock", model="kw"), provider=MockProvider(model="kw", default=reply))
    assert seen and set(seen) == {RUN_CACHE_KIB} and -8192 <= RUN_CACHE_KIB < 0
    assert project.db.execute("PRAGMA cache_size").fetchone()[0] == CACHE_KIB  # other commands read with the large one


def test_a_run_holds_the_segments_in_flight_not_its_corpus(tmp_path):
    project = make_project(tmp_path, n_docs=60, turns=40)  # 2,400 segments
    total = project.db.execute("SELECT count(*) FROM segments").fetchone()[0]
    alive: list[int] = []

    def reply(messages):
        if len(alive) < 1 and provider.calls_made == total // 2:
            gc.collect()
            alive.append(sum(1 for o in gc.get_objects() if type(o) is Segment))
        provider.calls_made += 1
        return keyword_reply(messages)

    provider = MockProvider(model="kw", default=reply)
    provider.calls_made = 0
    result = code_project(project, RunConfig(provider="mock", model="kw", concurrency=8), provider=provider)
    assert result.counts["ok"] == total == 2400
    # the chunk being read and the groups in flight; the whole corpus in memory would be 2,400
    assert alive and alive[0] <= CHUNK + 64, alive


def test_stored_segments_read_as_the_list_they_stand_for(tmp_path):
    project = make_project(tmp_path, n_docs=30, turns=40)
    everything = list(iter_segments(project.db))
    rowids = [r[0] for r in project.db.execute("SELECT rowid FROM segments ORDER BY rowid")]
    from array import array

    keep = array("q", rowids[::3])
    stored = StoredSegments(project.db, keep)
    assert list(stored) == everything[::3] and len(stored) == len(everything[::3])
    assert stored[5] == everything[15] and stored[-1] == everything[::3][-1]
    assert stored[10:700] == everything[::3][10:700]


def test_stored_contexts_are_the_preceding_turns_of_the_document(tmp_path):
    project = make_project(tmp_path, n_docs=5, turns=7)
    everything = list(iter_segments(project.db))
    for turns in (1, 2):
        want = {k: context_text(v) for k, v in preceding(everything, turns).items() if v}
        contexts = StoredContexts(project.db, turns)
        assert {s.id: contexts.get(s.id, "") for s in everything} == {s.id: want.get(s.id, "") for s in everything}
        assert sum(1 for s in everything if not contexts.get(s.id)) == 5  # each document's first turn has none


def test_a_segment_costs_one_commit_its_reply_and_its_outcome_together(tmp_path):
    project = make_project(tmp_path, n_docs=4, turns=10)
    commits: list[str] = []
    project.db.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    result = code_project(project, RunConfig(provider="mock", model="kw", concurrency=4))
    project.db.set_trace_callback(None)
    assert result.counts["ok"] == 40 and result.calls == 40
    # one per segment, and a few for the run itself (claim, heartbeat, end); two per segment before
    assert 40 <= len(commits) <= 40 + 10, len(commits)
    cached = project.db.execute("SELECT count(*) FROM call_cache").fetchone()[0]
    assert cached == 40


def test_a_write_that_fails_in_a_grouped_flush_keeps_the_reply_before_it(tmp_path):
    db = connect(tmp_path / "s.db")
    writes = PendingWrites(db)

    def refused() -> None:
        with transaction(db):
            db.execute("INSERT INTO nowhere VALUES (1)")

    writes.store_reply("k1", {"reply": "{}", "prompt_tokens": 1, "completion_tokens": 1, "model": "m", "mode": "x"},
                       with_next=True)
    assert rs.cache_get(db, "k1") is None and "k1" in writes.unstored  # not stored yet: still asked of memory
    with pytest.raises(sqlite3.OperationalError):
        writes.store(refused)
    assert rs.cache_get(db, "k1") is not None and "k1" not in writes.unstored


def test_a_reply_read_from_the_json_body_is_the_one_read_from_the_sdk_object():
    from openai.types.chat import ChatCompletion

    from assistcode.providers.openai_compat import OpenAIProvider

    provider = OpenAIProvider("m", base_url="http://127.0.0.1:9/v1")
    tool = {"id": "c", "type": "function", "function": {"name": "reply", "arguments": '{"codes": []}'}}
    bodies = [{"id": "x", "model": "m", "usage": {"prompt_tokens": 5, "completion_tokens": 2},
               "choices": [{"index": 0, "finish_reason": "length",
                            "message": {"role": "assistant", "content": None, "tool_calls": [tool]}}]},
              {"id": "x", "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}]}]
    for body in bodies:
        for mode in ("json_schema", "tools"):
            assert provider._reply(body, mode) == provider._reply(ChatCompletion.construct(**body), mode)
    with pytest.raises(ProviderError, match="not a chat completion"):
        provider._reply({"error": "login"}, "json_schema")
    with pytest.raises(ProviderError, match="malformed"):
        provider._reply({"choices": ["text"]}, "json_schema")

"""The queue and its decisions at library level: priorities, audit draw, leases, settle, undo, the append-only log,
adjudication, merge between machines, and the feedback into eval and prompts."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from assistcode import review
from assistcode.errors import InputError
from assistcode.evaluate import from_store
from assistcode.project import Project

from ..conftest import seed_project
from .conftest import suggest

M = "run1:model"


def codes_of(p: Project, coder: str, segment: str) -> set[str] | None:
    if not p.db.execute("SELECT 1 FROM seen WHERE coder = ? AND segment_id = ?", (coder, segment)).fetchone():
        return None
    return {r[0] for r in p.db.execute("SELECT code FROM annotations WHERE coder = ? AND segment_id = ?", (coder, segment))}


def test_queue_holds_each_segment_once_failed_first(queued: Project) -> None:
    n = len(queued.segments())
    assert queued.db.execute("SELECT count(*) FROM review_items").fetchone()[0] == n
    again = review.enqueue(queued.db, M, audit=0.0)
    assert (again.queued, again.already_queued) == (0, n)
    first = review.claim(queued.db, "ann")
    assert first.reasons[0] == "model failed" and first.proposed == []


def test_priority_follows_the_signals(tmp_path: Path) -> None:
    p = Project(seed_project(tmp_path / "p"))
    suggest(p)
    review.enqueue(p.db, M, signals=["confidence"], audit=0.0)
    rows = p.db.execute("SELECT i.priority, a.confidence FROM review_items i JOIN annotations a "
                        "ON a.segment_id = i.segment_id AND a.coder = 'run1:model' ORDER BY i.priority DESC").fetchall()
    # lower confidence, higher priority
    assert [c for _, c in rows] == sorted(c for _, c in rows)
    assert all(abs(pr - (1 - c)) < 1e-6 for pr, c in rows)


def test_audit_draws_from_confident_items_only(tmp_path: Path) -> None:
    p = Project(seed_project(tmp_path / "p"))
    suggest(p)
    rep = review.enqueue(p.db, M, signals=["confidence"], audit=1.0)
    audit = p.db.execute("SELECT reasons, audit FROM review_items WHERE audit = 1").fetchall()
    assert rep.audit == rep.confident == len(audit) > 0
    # confident: no suggestion (nothing to be unsure of) or confidence of 0.8 or more
    conf = {r[0]: r[1] for r in p.db.execute("SELECT segment_id, min(confidence) FROM annotations WHERE coder='run1:model' "
                                             "GROUP BY segment_id")}
    for seg, in p.db.execute("SELECT segment_id FROM review_items WHERE audit = 1"):
        assert seg not in conf or conf[seg] >= 0.8 - 1e-9


def test_decisions_settle_into_reviewer_coders(queued: Project) -> None:
    db = queued.db
    items = [review.claim(db, "ann") for _ in range(1)]
    it = items[0]
    review.decide(db, it, "ann", "edit", codes=["organisations"], codebook=queued.codebook())
    assert codes_of(queued, "reviewer:ann", it.segment_id) == {"organisations"}
    assert codes_of(queued, "reviewed", it.segment_id) == {"organisations"}
    nxt = review.claim(db, "ann")
    assert nxt.id != it.id
    review.decide(db, nxt, "ann", "reject")
    assert codes_of(queued, "reviewed", nxt.segment_id) == set()
    third = review.claim(db, "ann")
    review.decide(db, third, "ann", "accept")
    assert codes_of(queued, "reviewed", third.segment_id) == set(third.proposed)
    # undo takes back the latest, as a new record, and gives the item back
    rec = review.undo(db, "ann")
    assert rec.undoes and codes_of(queued, "reviewed", third.segment_id) is None
    assert review.claim(db, "ann").id == third.id
    actions = [r[0] for r in db.execute("SELECT action FROM review_decisions ORDER BY id")]
    assert actions == ["edit", "reject", "accept", "undo"]


def test_the_log_is_append_only(queued: Project) -> None:
    it = review.claim(queued.db, "ann")
    review.decide(queued.db, it, "ann", "accept")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        queued.db.execute("UPDATE review_decisions SET action = 'reject'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        queued.db.execute("DELETE FROM review_decisions")


def test_bad_decisions_are_refused_and_nothing_written(queued: Project) -> None:
    it = review.claim(queued.db, "ann")
    with pytest.raises(InputError, match="unknown code 'nope'"):
        review.decide(queued.db, it, "ann", "edit", codes=["nope"], codebook=queued.codebook())
    with pytest.raises(InputError, match="needs the codes"):
        review.decide(queued.db, it, "ann", "edit")
    with pytest.raises(InputError, match="claimed by ann"):
        review.decide(queued.db, it, "bob", "accept")
    with pytest.raises(InputError, match="no review item"):
        review.decide(queued.db, "zzzzzzzz", "ann", "accept")
    assert queued.db.execute("SELECT count(*) FROM review_decisions").fetchone()[0] == 0
    with pytest.raises(InputError, match="who is reviewing"):
        review.reviewer_name("")


def test_leases_keep_reviewers_apart_and_expire(queued: Project) -> None:
    a = review.claim(queued.db, "ann", clock=1000.0)
    b = review.claim(queued.db, "bob", clock=1000.0)
    assert a.id != b.id
    assert review.claim(queued.db, "ann", clock=1001.0).id == a.id  # the one you hold, until you decide it
    # ann walks away; after the lease, bob may take her item
    later = 1000.0 + review.decisions.LEASE_SECONDS + 1
    review.decide(queued.db, b, "bob", "accept", clock=later)
    assert review.claim(queued.db, "bob", clock=later).id == a.id


def test_double_review_conflict_goes_to_adjudication(tmp_path: Path) -> None:
    p = Project(seed_project(tmp_path / "p"))
    suggest(p)
    review.enqueue(p.db, M, audit=0.0, double=1.0)
    a = review.claim(p.db, "ann")
    b = review.claim(p.db, "bob")
    assert a.id == b.id  # two reviews wanted: both may hold it
    review.decide(p.db, a, "ann", "accept")
    assert review.claim(p.db, "ann").id != a.id  # never the same item twice to one reviewer
    rec = review.decide(p.db, b, "bob", "edit", codes=["national-level"], codebook=p.codebook())
    assert rec.status == "adjudicate"
    assert codes_of(p, "reviewed", a.segment_id) is None
    adj = review.claim(p.db, "chair", adjudicate=True)
    assert adj.id == a.id
    review.decide(p.db, adj, "chair", "adjudicate", codes=["national-level"], codebook=p.codebook())
    assert codes_of(p, "reviewed", a.segment_id) == {"national-level"}
    st = review.status(p.db, n_boot=0)
    assert st["adjudicate"] == 0 and st["decisions"] == {"accept": 1, "edit": 1, "adjudicate": 1}


def test_status_estimates_the_unreviewed_error_rate_from_the_audit(tmp_path: Path) -> None:
    p = Project(seed_project(tmp_path / "p"))
    suggest(p)
    review.enqueue(p.db, M, signals=["confidence"], audit=1.0)
    audit_items = [r[0] for r in p.db.execute("SELECT uid FROM review_items WHERE audit = 1 ORDER BY id")]
    for k, uid in enumerate(audit_items):
        review.decide(p.db, uid, "ann", "accept" if k % 2 else "edit", codes=None if k % 2 else ["organisations"],
                      codebook=p.codebook())
    a = review.status(p.db, n_boot=0)["audit"]
    assert a["confident_unreviewed"] == 0  # every confident item was drawn for the audit, and all are reviewed
    changed = (len(audit_items) + 1) // 2
    assert (a["reviewed"], a["changed"]) == (len(audit_items), changed)
    assert a["error_rate"] == pytest.approx(changed / len(audit_items))
    assert a["low"] < a["error_rate"] < a["high"]


def test_the_audit_estimate_counts_the_confident_items_nobody_reviewed(tmp_path: Path) -> None:
    p = Project(seed_project(tmp_path / "p"))
    suggest(p)
    rep = review.enqueue(p.db, M, signals=["confidence"], audit=0.0)
    assert rep.confident > 0
    assert review.status(p.db, n_boot=0)["audit"]["confident_unreviewed"] == rep.confident


def test_wilson_interval_matches_the_published_value() -> None:
    # Newcombe (1998), Statistics in Medicine 17: 857-872, table I: 81/263 -> 0.2553 to 0.3662
    p, lo, hi = review.team.wilson(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    assert review.team.wilson(0, 10)[1] == 0.0


def test_merge_keeps_every_decision_and_sends_conflicts_to_adjudication(tmp_path: Path, queued: Project) -> None:
    home = queued.path
    queued.close()
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    shutil.copytree(home, a_dir)
    shutil.copytree(home, b_dir)
    with Project(a_dir) as a, Project(b_dir) as b:
        items = [r[0] for r in a.db.execute("SELECT uid FROM review_items ORDER BY id")]
        for uid in items[:6]:
            review.decide(a.db, uid, "ann", "accept")
        for uid in items[4:9]:  # two overlap with ann's, decided differently
            review.decide(b.db, uid, "bob", "edit", codes=["national-level"], codebook=b.codebook())
        review.export_log(a.db, tmp_path / "ann.jsonl")
        review.export_log(b.db, tmp_path / "bob.jsonl")
    with Project(home) as main:
        r1 = review.merge_log(main.db, tmp_path / "ann.jsonl")
        r2 = review.merge_log(main.db, tmp_path / "bob.jsonl")
        again = review.merge_log(main.db, tmp_path / "bob.jsonl")
        assert (r1["added"], r2["added"], again["added"], again["already_here"]) == (6, 5, 0, 5)
        assert main.db.execute("SELECT count(*) FROM review_decisions").fetchone()[0] == 11
        assert r2["waiting_for_adjudication"] == 2
        st = review.status(main.db, n_boot=50)
        assert st["done"] == 9 - 2
        assert st["agreement_between_reviewers"]["units"] == 2


def test_merge_refuses_a_broken_log(tmp_path: Path, queued: Project) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"uid": "x"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:1: record lacks item_id"):
        review.merge_log(queued.db, bad)
    bad.write_text("not json\n")
    with pytest.raises(InputError, match="not a JSON line"):
        review.merge_log(queued.db, bad)


def test_reviewed_examples_cover_codes_and_are_left_out_of_agreement(queued: Project) -> None:
    from assistcode.runs.engine import RunConfig, code_project

    db, cb = queued.db, queued.codebook()
    plan = {0: ["every-level"], 1: ["organisations"], 2: [], 3: ["every-level"]}
    for k, codes in plan.items():
        it = review.claim(db, "ann")
        review.decide(db, it, "ann", "edit", codes=codes, codebook=cb)
    ex = review.reviewed_examples(db, k=6)
    assert sorted(tuple(e["codes"]) for e in ex) == [(), ("every-level",), ("organisations",)]  # one per code, one empty
    others = review.reviewed_examples(db, k=6, exclude=[ex[0]["segment_id"]])
    assert ex[0]["segment_id"] not in {e["segment_id"] for e in others}
    result = code_project(queued, RunConfig(examples=ex))
    manifest = json.loads(db.execute("SELECT manifest FROM runs WHERE id = ?", (result.run.id,)).fetchone()[0])
    assert manifest["examples"]["segments"] == [e["segment_id"] for e in ex]
    data = from_store(db, [result.run.coder])
    assert set(data.units).isdisjoint(e["segment_id"] for e in ex)
    assert len(data.units) == len(queued.segments()) - 3


def test_a_reviewed_run_cannot_be_deleted_a_queued_one_can(queued: Project) -> None:
    from assistcode.runs import store as rs

    it = review.claim(queued.db, "ann")
    review.decide(queued.db, it, "ann", "accept")
    with pytest.raises(InputError, match="1 review decisions"):
        rs.delete_run(queued.db, M)
    other = suggest(queued, name="other")
    review.enqueue(queued.db, other, audit=0.0)
    review.claim(queued.db, "bob")  # may lease one of the other run's items
    rs.delete_run(queued.db, other)
    assert queued.db.execute("SELECT count(*) FROM review_items WHERE coder = ?", (other,)).fetchone()[0] == 0


def test_every_decision_records_the_suggestions_model_and_prompt(queued: Project) -> None:
    it = review.claim(queued.db, "ann")
    review.decide(queued.db, it, "ann", "accept", shown={"screen": "cli"})
    shown = json.loads(queued.db.execute("SELECT shown FROM review_decisions").fetchone()[0])
    assert shown["screen"] == "cli"
    assert shown["suggestion"] == {"coder": M, "run": 1, "provider": "test", "model": "model", "template": "deductive",
                                   "template_version": 1, "template_hash": None}


def test_skipped_items_come_back_when_nothing_else_is_left(tmp_path: Path) -> None:
    p = Project(seed_project(tmp_path / "p"))
    suggest(p)
    review.enqueue(p.db, M, audit=0.0)
    first = review.claim(p.db, "ann")
    review.decide(p.db, first, "ann", "skip")
    seen = {first.id}
    while (it := review.claim(p.db, "ann")) is not None and it.id not in seen:
        seen.add(it.id)
        review.decide(p.db, it, "ann", "accept")
    assert it is not None and it.id == first.id  # everything else decided: the skipped item is back
    review.decide(p.db, it, "ann", "reject")
    assert review.claim(p.db, "ann") is None
    assert review.status(p.db, n_boot=0)["open"] == 0


"""The review commands for scripts, and the feedback loop through the CLI."""
from __future__ import annotations

import json
from pathlib import Path

from assistcode.project import Project


def test_next_decide_status_export_through_the_cli(run, queued: Project, tmp_path: Path, monkeypatch) -> None:
    path = queued.path
    queued.close()
    monkeypatch.setenv("ASSISTCODE_REVIEWER", "dee")
    r = run("review", "next", "--json", "--project", path)
    assert r.code == 0
    item = r.json()
    assert {"item_id", "text", "before", "after", "suggestions", "provenance", "proposed"} <= set(item)
    assert run("review", "next", "--json", "--project", path).json()["item_id"] == item["item_id"]  # still yours
    r = run("review", "decide", item["item_id"], "edit", "--codes", "organisations", "--memo", "m1", "--json",
            "--project", path)
    assert r.code == 0 and r.json()["codes_after"] == ["organisations"]
    r = run("review", "decide", item["item_id"], "edit", "--codes", "no-such-code", "--project", path)
    assert r.code == 2 and "unknown code 'no-such-code'" in r.err
    monkeypatch.delenv("ASSISTCODE_REVIEWER")
    r = run("review", "next", "--project", path)
    assert r.code == 2 and "who is reviewing" in r.err
    st = run("review", "status", "--json", "--project", path).json()
    assert st["done"] == 1 and st["reviewers"] == {"dee": {"edit": 1}}
    r = run("review", "export", "-o", tmp_path / "log.csv", "--format", "csv", "--project", path)
    assert r.code == 0
    assert "organisations" in (tmp_path / "log.csv").read_text() and "m1" in (tmp_path / "log.csv").read_text()


def test_eval_says_how_agreement_moved_after_a_review_round(run, queued: Project) -> None:
    path = queued.path
    db = queued.db
    from assistcode import review

    first = run("eval", "--reference", "reviewed", "--n-boot", "0", "--project", path)
    # no review decision yet: there is no "reviewed" coder to compare against, said in one line
    assert first.code == 2 and first.out == "" and "no coder named 'reviewed'" in first.err
    assert first.err.count("\n") == 1
    for _ in range(10):
        it = review.claim(db, "ann")
        review.decide(db, it, "ann", "accept")
    queued.close()
    a = run("eval", "--coders", "run1:model,reviewed", "--reference", "reviewed", "--n-boot", "0", "--json", "--project", path)
    assert "since_previous" not in a.json()
    with Project(path) as p:
        for _ in range(5):
            it = review.claim(p.db, "ann")
            review.decide(p.db, it, "ann", "edit", codes=["national-level"], codebook=p.codebook())
    b = run("eval", "--coders", "run1:model,reviewed", "--reference", "reviewed", "--n-boot", "0", "--json", "--project", path)
    since = b.json()["since_previous"]
    assert since["review_decisions_since"] == 5
    change = {c["statistic"]: c for c in since["changes"]}["gwet_ac1"]
    assert change["n_units_after"] - change["n_units_before"] == 5
    assert change["after"] < change["before"]  # five edits away from the suggestion: agreement falls


def test_code_with_reviewed_examples(run, queued: Project) -> None:
    from assistcode import review

    path = queued.path
    decided = {}
    for codes in (["every-level"], ["organisations"], []):
        it = review.claim(queued.db, "ann")
        decided[it.segment_id] = codes
        review.decide(queued.db, it, "ann", "edit", codes=codes, codebook=queued.codebook())
    queued.close()
    r = run("code", "--provider", "mock", "--model", "mock", "--examples", "reviewed", "--json", "--project", path)
    assert r.code == 0, r.err
    with Project(path) as p:
        manifest = json.loads(p.db.execute("SELECT manifest FROM runs ORDER BY id DESC").fetchone()[0])
    # the examples are exactly the three reviewed segments (the one edited to "no code" included), recorded by id
    assert manifest["examples"]["count"] == 3 and sorted(manifest["examples"]["segments"]) == sorted(decided)
    assert len(manifest["examples"]["hash"]) == 64

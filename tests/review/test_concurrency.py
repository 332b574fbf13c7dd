"""Several reviewer processes on one queue: no item decided twice unless asked, no decision lost (shown by counts)."""
from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter
from pathlib import Path

import pytest

from assistcode import review
from assistcode.project import Project

from ..conftest import seed_project
from .conftest import suggest


def _reviewer(path: str, name: str, out: "mp.Queue", start: "mp.Barrier") -> None:
    decided = []
    with Project(path) as p:
        start.wait()  # all at once: the point is that they collide
        while (item := review.claim(p.db, name)) is not None:
            time.sleep(0.005)  # reading the item
            review.decide(p.db, item, name, "accept" if len(decided) % 2 else "reject")
            decided.append(item.uid)
    out.put((name, decided))


def _many(tmp_path: Path, n_reviewers: int, double: float) -> tuple[Project, list[tuple[str, list[str]]]]:
    p = Project(seed_project(tmp_path / "p"))
    coder = suggest(p)
    # the seed has 20 segments; a second and third run make 60 items, enough for the processes to collide
    for k in (2, 3):
        suggest(p, name=f"m{k}", every=k)
    for c in [coder, "run2:m2", "run3:m3"]:
        review.enqueue(p.db, c, audit=0.0, double=double)
    ctx = mp.get_context("spawn")
    out, start = ctx.Queue(), ctx.Barrier(n_reviewers)
    procs = [ctx.Process(target=_reviewer, args=(str(p.path), f"r{i}", out, start)) for i in range(n_reviewers)]
    for pr in procs:
        pr.start()
    results = [out.get(timeout=120) for _ in procs]
    for pr in procs:
        pr.join(timeout=30)
        assert pr.exitcode == 0
    return p, results


@pytest.mark.parametrize("n", [2, 4])
def test_single_review_each_item_decided_exactly_once(tmp_path: Path, n: int) -> None:
    p, results = _many(tmp_path, n, double=0.0)
    decided = Counter(uid for _, uids in results for uid in uids)
    items = p.db.execute("SELECT count(*) FROM review_items").fetchone()[0]
    assert items == 60
    assert len(decided) == items and set(decided.values()) == {1}
    assert p.db.execute("SELECT count(*) FROM review_decisions").fetchone()[0] == items
    assert p.db.execute("SELECT count(*) FROM review_items WHERE status = 'done'").fetchone()[0] == items
    assert sum(1 for _, uids in results if uids) >= 2  # the work was shared: they ran at the same time


def test_double_review_each_item_twice_by_two_people(tmp_path: Path) -> None:
    p, results = _many(tmp_path, 4, double=1.0)
    per_item: dict[str, set[str]] = {}
    for name, uids in results:
        for uid in uids:
            assert name not in per_item.get(uid, set())
            per_item.setdefault(uid, set()).add(name)
    assert len(per_item) == 60 and {len(v) for v in per_item.values()} == {2}
    assert p.db.execute("SELECT count(*) FROM review_decisions").fetchone()[0] == 120

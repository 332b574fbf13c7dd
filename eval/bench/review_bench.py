"""The reviewer queue at a million items, at library level: claiming the next item (``review.claim``) and committing a
decision (``review.decide``: the appended record, the item settled, the reviewer coders' codes rewritten), median and
p99, each beside a bare indexed SQLite statement of the same kind on the same store in the same run:

- next, bare: in one write transaction, the top open item by the partial priority index, and a lease row for it;
- decision, bare: in one write transaction, one row appended to the decision log and the item marked done.

The store runs as it always does (WAL, ``synchronous=NORMAL``: durable against a process crash).

    python eval/bench/review_bench.py [--items 1000000] [--n 1000] [--json eval/bench/results/review.json]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402

from assistcode import review  # noqa: E402
from assistcode.project import Project  # noqa: E402
from assistcode.runs import store as rs  # noqa: E402
from assistcode.store.db import now, transaction  # noqa: E402

PER_DOC = 100


def build(folder: Path, items: int) -> tuple[Project, float]:
    """A project of ``items`` segments coded by one run (a third with a suggested code), all queued."""
    p = Project.init(folder)
    stamp = now()
    docs, segs, run_rows, notes = [], [], [], []
    run = rs.create_run(p.db, "bench", "fp-bench", {"provider": {"provider": "bench", "model": "bench"}})
    for d in range(items // PER_DOC):
        doc = f"d{d:07d}"
        docs.append((doc, doc, "", "h" + doc, doc, "{}", "utf-8", "turn", 1 + d * PER_DOC, PER_DOC))
        for k in range(PER_DOC):
            sid = f"s{d:07d}{k:03d}"
            segs.append((sid, doc, k, 0, 0, f"turn {k} of {doc}"))
            run_rows.append((run.id, sid, "ok", stamp))
            if k % 3 == 0:
                notes.append((sid, run.coder, "every-level", (k % 10) / 10, run.id))
    with transaction(p.db):
        p.db.executemany("INSERT INTO documents (id, title, text, text_hash, key, metadata, encoding, segmenter, "
                         "first_segment, segment_count) VALUES (?,?,?,?,?,?,?,?,?,?)", docs)
        p.db.executemany('INSERT INTO segments (id, document_id, position, start, "end", text) VALUES (?,?,?,?,?,?)', segs)
        p.db.executemany("INSERT INTO run_segments (run_id, segment_id, status, created_at) VALUES (?,?,?,?)", run_rows)
        p.db.executemany("INSERT INTO seen (segment_id, coder) VALUES (?, ?)", [(s[0], run.coder) for s in segs])
        p.db.executemany("INSERT INTO annotations (segment_id, coder, code, confidence, run_id) VALUES (?,?,?,?,?)", notes)
    t0 = time.perf_counter()
    review.enqueue(p.db, run.id, signals=["confidence"], audit=0.1)
    return p, time.perf_counter() - t0


def summary(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"median_ms": statistics.median(ms), "p99_ms": ms[int(0.99 * (len(ms) - 1))], "max_ms": ms[-1], "n": len(ms)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        project, enqueue_s = build(Path(tmp) / "p", args.items)
        db = project.db
        queued = db.execute("SELECT count(*) FROM review_items").fetchone()[0]
        print(f"{queued:,} items queued (build {time.perf_counter() - t0:.0f} s, enqueue {enqueue_s:.1f} s)", flush=True)
        # other reviewers hold leases, as on a shared server
        for r in ("ann", "bob", "cy"):
            review.claim(db, r)
        next_ms, decide_ms, bare_next_ms, bare_decide_ms = [], [], [], []
        for i in range(args.n):
            t = time.perf_counter()
            item = review.claim(db, "dee")
            next_ms.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            review.decide(db, item, "dee", ("accept", "reject", "edit")[i % 3], codes=["organisations"] if i % 3 == 2 else None)
            decide_ms.append(1000 * (time.perf_counter() - t))
            # the bare statements of the same kind, interleaved so both see the same store state and cache
            t = time.perf_counter()
            with transaction(db):
                top = db.execute("SELECT id FROM review_items WHERE status = 'open' ORDER BY priority DESC, id "
                                 "LIMIT 1").fetchone()[0]
                db.execute("INSERT OR REPLACE INTO review_leases (item_id, reviewer, until) VALUES (?, 'bare', ?)",
                           (top, time.time() + 60))
            bare_next_ms.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            with transaction(db):
                db.execute("INSERT INTO review_decisions (uid, item_id, reviewer, decided_at, action, codes_before, "
                           "codes_after) VALUES (?, ?, 'bare', ?, 'accept', '[]', '[]')", (uuid.uuid4().hex, top, now()))
                db.execute("UPDATE review_items SET status = 'done' WHERE id = ?", (top,))
            bare_decide_ms.append(1000 * (time.perf_counter() - t))
        st = review.status(db, n_boot=0)
        project.close()
    nxt, dec, bnext, bdec = map(summary, (next_ms, decide_ms, bare_next_ms, bare_decide_ms))
    emit({
        "items": queued, "decisions_timed": args.n, "enqueue_seconds": enqueue_s,
        "next": nxt, "next_bare_indexed_query": bnext, "decide": dec, "decide_bare_insert_update": bdec,
        "next_median_ratio_to_bare": nxt["median_ms"] / bnext["median_ms"],
        "decide_median_ratio_to_bare": dec["median_ms"] / bdec["median_ms"],
        "targets": {"next_ms": 50, "decide_ms": 20},
        "queue_after": {k: st[k] for k in ("open", "done", "leased_now")},
    }, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

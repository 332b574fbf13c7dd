"""Does ``assistcode eval`` keep up with the corpus? (issue 15, last paragraph)

A synthetic project of 100,000 segments in 2,000 documents, coded by two humans and one model run with 30 codes
(multi-label, Zipf-like prevalence from about 20% down to under 1%, documents that lean towards some codes, coders of
realistic sensitivity, the model failing on 0.5% of segments). ``assistcode eval`` runs through its real entry point
in a child process twice: with 1,000 bootstrap resamples clustered by document (BCa, the default), and with
``--n-boot 0`` (the same statistics once, no resampling), alternately. Wall time, CPU time and the child's peak RSS
of each, and their ratios; the target is at most 30 s and 2 GB with resampling.

    python eval/bench/eval_scale_bench.py [--quick] [--repeat 3] [--json eval/bench/results/eval_scale.json]

The store is built by bulk insert (seconds) in a temporary folder, or in ``--keep DIR``. Each timing is the best of
``--repeat`` runs; the load average (1 minute) is recorded around every run, since the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402

from assistcode.model import Code, Codebook  # noqa: E402
from assistcode.project import Project  # noqa: E402
from assistcode.store.db import now  # noqa: E402

CODERS = (("h1", "human", 0.85, 0.04), ("h2", "human", 0.80, 0.05), ("gpt", "model", 0.75, 0.08))
"""name, kind, sensitivity (a true code kept), false-positive rate relative to the code's prevalence."""


def synthetic(n_segments: int, n_documents: int, n_codes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Document of each segment and each coder's segments x codes matrix (the model's failures: -1 rows)."""
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(n_segments - n_documents, rng.dirichlet(np.full(n_documents, 2.0))) + 1
    doc = np.repeat(np.arange(n_documents), sizes)
    base = 1.0 / np.arange(1, n_codes + 1) ** 0.9
    base *= 1.3 / base.sum()  # about 1.3 true codes per segment, the most frequent near 25%
    lean = rng.gamma(2.0, 0.5, size=(n_documents, n_codes))  # documents lean towards some codes
    prevalence = np.minimum(0.9, base[None, :] * lean)[doc]
    truth = rng.random((n_segments, n_codes)) < prevalence
    coders = {}
    for name, _, sensitivity, false_rate in CODERS:
        draw = rng.random((n_segments, n_codes))
        coded = np.where(truth, draw < sensitivity, draw < false_rate * prevalence)
        coders[name] = coded
    failed = rng.random(n_segments) < 0.005
    return {"doc": doc, "coders": coders, "failed": failed, "sizes": sizes}


def build_store(path: Path, n_segments: int, n_documents: int, n_codes: int, seed: int = 0) -> dict[str, int]:
    """A project holding the synthetic corpus and its three coders, written with a few bulk inserts."""
    data = synthetic(n_segments, n_documents, n_codes, seed)
    project = Project.init(path)
    codes = tuple(Code(id=f"c{k:02d}", name=f"code {k}") for k in range(n_codes))
    project.import_codebook(Codebook(name="synthetic", codes=codes))
    db = project.db
    seg_ids = [f"s{i:07d}" for i in range(n_segments)]
    doc_ids = [f"d{j:05d}" for j in range(n_documents)]
    first = np.concatenate([[0], np.cumsum(data["sizes"])[:-1]])
    stamp = now()
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO documents (id, title, text, text_hash, key, metadata, encoding, segmenter, first_segment, "
        "segment_count) VALUES (?, ?, '', '', '', ?, 'utf-8', 'turn', ?, ?)",
        [(d, d, json.dumps({"site": f"site{j % 4}"}), int(first[j]) + 1, int(data["sizes"][j]))
         for j, d in enumerate(doc_ids)])
    position = np.arange(n_segments) - first[data["doc"]]
    db.executemany("INSERT INTO segments (id, document_id, position, start, \"end\", speaker, text) "
                   "VALUES (?, ?, ?, 0, 0, NULL, ?)",
                   ((s, doc_ids[d], int(p), s) for s, d, p in zip(seg_ids, data["doc"].tolist(), position.tolist())))
    counts = {"segments": n_segments, "documents": n_documents, "codes": n_codes, "annotations": 0, "seen": 0}
    for name, kind, _, _ in CODERS:
        db.execute("INSERT INTO coders (name, kind, metadata, created_at) VALUES (?, ?, '{}', ?)", (name, kind, stamp))
        saw = ~data["failed"] if kind == "model" else np.ones(n_segments, bool)
        seen_rows = [(seg_ids[i], name) for i in np.flatnonzero(saw).tolist()]
        db.executemany("INSERT INTO seen (segment_id, coder) VALUES (?, ?)", seen_rows)
        units, cols = np.nonzero(data["coders"][name] & saw[:, None])
        db.executemany("INSERT INTO annotations (segment_id, coder, code) VALUES (?, ?, ?)",
                       ((seg_ids[u], name, codes[c].id) for u, c in zip(units.tolist(), cols.tolist())))
        counts["seen"] += len(seen_rows)
        counts["annotations"] += len(units)
    db.execute("COMMIT")
    project.close()
    return counts


def run_eval(project: Path, n_boot: int, out: Path) -> dict[str, float]:
    """``assistcode eval`` in a child process: wall seconds and the child's peak RSS (MiB)."""
    cmd = [sys.executable, "-m", "assistcode", "eval", "--project", str(project), "--n-boot", str(n_boot),
           "--json-out", str(out)]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    err = child.stderr.read().decode() if child.stderr else ""
    if status != 0:
        raise SystemExit(f"assistcode eval --n-boot {n_boot} failed ({status}):\n{err[-3000:]}")
    return {"seconds": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "load_1min_before": load,
            "load_1min_after": os.getloadavg()[0], "cpu_seconds": usage.ru_utime + usage.ru_stime}


def best(runs: list[dict[str, float]]) -> dict[str, object]:
    top = min(runs, key=lambda r: r["seconds"])
    return {**top, "runs": runs, "peak_rss_mib_max": max(r["peak_rss_mib"] for r in runs)}


def summary(result_json: Path) -> dict[str, object]:
    """What the report held: how many intervals, and that they are there."""
    r = json.loads(result_json.read_text())
    estimates = [e for c in r["overall"] for e in c["estimates"]]
    estimates += [e for row in r["per_code"] for e in row["estimates"]]
    estimates += [row["ceiling"] for row in r["per_code"] if "ceiling" in row]
    with_interval = sum(e.get("low") is not None for e in estimates)
    return {"estimates": len(estimates), "with_interval": with_interval, "comparisons": len(r["overall"]),
            "per_code_rows": len(r["per_code"]), "clustered_by_document": r["meta"]["clustered_by_document"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a tenth of the corpus (a smoke run, not the reported numbers)")
    p.add_argument("--repeat", type=int, default=3, help="runs per timing, the same for both (best is kept)")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--keep", type=Path, help="build (or reuse) the project here instead of a temporary folder")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    scale = 10 if args.quick else 1
    n_segments, n_documents, n_codes = 100_000 // scale, 2_000 // scale, 30
    with tempfile.TemporaryDirectory() as tmp:
        project = args.keep or Path(tmp) / "project"
        built: dict[str, object] = {}
        if not (project / "assistcode.db").exists():
            start = time.perf_counter()
            built = build_store(project, n_segments, n_documents, n_codes)
            built["seconds"] = time.perf_counter() - start
        out = Path(tmp) / "eval.json"
        plain, resampled = [], []
        for _ in range(args.repeat):  # alternating, so both see the same spells of load on a shared machine
            plain.append(run_eval(project, 0, out))
            resampled.append(run_eval(project, args.n_boot, out))
        once, boot = best(plain), best(resampled)
        result = {
            "case": {"segments": n_segments, "documents": n_documents, "codes": n_codes,
                     "coders": [c[0] + f" ({c[1]})" for c in CODERS], "n_boot": args.n_boot,
                     "interval": "bca, clustered by document", "quick": args.quick},
            "store_build": built,
            "report": summary(out),
            "no_resampling": once,
            "bootstrap": boot,
            "ratio_seconds": boot["seconds"] / once["seconds"],
            "ratio_cpu_seconds": boot["cpu_seconds"] / once["cpu_seconds"],
            "niceness": os.nice(0),
            "targets": {"seconds": 30, "peak_rss_mib": 2048,
                        "met": boot["seconds"] <= 30 and boot["peak_rss_mib_max"] <= 2048},
            "load_1min_at_end": os.getloadavg()[0],
        }
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Coverage of assistcode's 95% bootstrap intervals against a known true value.

Two coders label units of a binary code. Each unit's true class is 1 with probability ``prevalence``; each coder
reports it correctly with probability ``accuracy`` (independently), else the other class. The population joint
table is then known exactly, and with it the true Cohen's kappa and Scott's pi (the large-sample value of
Krippendorff's alpha). Each replication draws ``units`` units, computes the interval, and records whether it
covers the true value.

Percentile and BCa come from the same resamples in each replication (and Cohen's kappa and alpha from the same
unit draws), so the two methods differ only in how they read the replicates: ``bounds`` in
``assistcode.agreement.uncertainty``, the function ``bootstrap_interval`` itself uses.

    python eval/coverage.py --replications 1000 --units 200 --json eval/results/coverage.json
    nice -n 10 python eval/coverage.py --grid --json eval/results/coverage-grid.json   # the benchmark grid

The grid (a benchmark, not a test): units 30, 100, 1,000 x prevalence 0.05, 0.2, 0.5, accuracies 0.9 and 0.85,
1,000 replications per cell, 1,000 resamples per replication. The JSON is rewritten after every cell, so an
interrupted run keeps the cells it finished.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistcode.agreement.estimators import alpha, cohen  # noqa: E402
from assistcode.agreement._data import Ratings  # noqa: E402
from assistcode.agreement.coefficients import delta_for  # noqa: E402
from assistcode.agreement.uncertainty import _weights, bounds, jackknife  # noqa: E402


def true_values(prevalence: float, acc_a: float, acc_b: float) -> dict[str, float]:
    joint = np.zeros((2, 2))
    for truth, p_truth in ((1, prevalence), (0, 1 - prevalence)):
        for a in (0, 1):
            for b in (0, 1):
                pa = acc_a if a == truth else 1 - acc_a
                pb = acc_b if b == truth else 1 - acc_b
                joint[a, b] += p_truth * pa * pb
    po = np.trace(joint)
    pe_cohen = joint.sum(1) @ joint.sum(0)
    pooled = (joint.sum(1) + joint.sum(0)) / 2
    pe_scott = (pooled**2).sum()
    return {"cohen_kappa": (po - pe_cohen) / (1 - pe_cohen), "krippendorff_alpha": (po - pe_scott) / (1 - pe_scott)}


METHODS = ("bca", "percentile")
GRID_UNITS = (30, 100, 1000)
GRID_PREVALENCE = (0.05, 0.2, 0.5)


def cell(replications: int, units: int, prevalence: float, acc_a: float, acc_b: float, n_boot: int,
         seed: int) -> dict[str, object]:
    """One scenario: coverage of both statistics by both methods, with misses split by side (the truth below the
    interval or above it). A replication whose data hold one category only is skipped and counted; one whose
    coefficient or interval is undefined counts as a miss and is counted."""
    rng = np.random.default_rng(seed)
    truth = {k: float(v) for k, v in true_values(prevalence, acc_a, acc_b).items()}
    keys = [(m, s) for m in METHODS for s in truth]
    hits = {k: 0 for k in keys}
    below = {k: 0 for k in keys}  # truth < low
    above = {k: 0 for k in keys}  # truth > high
    undefined = {k: 0 for k in keys}
    widths: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
    skipped = 0
    for _ in range(replications):
        t = rng.random(units) < prevalence
        a = np.where(rng.random(units) < acc_a, t, ~t).astype(np.int64)
        b = np.where(rng.random(units) < acc_b, t, ~t).astype(np.int64)
        codes = np.vstack([a, b])
        if len(np.unique(codes)) < 2:
            skipped += 1
            continue
        r = Ratings(codes, (0, 1), True)
        weights = _weights(rng, units, n_boot, None, 0)  # one set of unit draws for both statistics and methods
        for name, e in (("cohen_kappa", cohen(r)), ("krippendorff_alpha", alpha(codes, 2, delta_for("nominal", r)))):
            theta = e.value()
            boots = e.weighted(weights)
            ok = boots[np.isfinite(boots)]
            jack = jackknife(e)
            for method in METHODS:
                key = (method, name)
                if not np.isfinite(theta) or len(ok) < 2:
                    undefined[key] += 1
                    continue
                low, high = bounds(theta, ok, jack, 0.95, method)
                hits[key] += low <= truth[name] <= high
                below[key] += truth[name] < low
                above[key] += truth[name] > high
                widths[key].append(high - low)
    done = replications - skipped
    per = lambda d: {m: {s: d[(m, s)] for s in truth} for m in METHODS}  # noqa: E731
    return {
        "replications": replications, "units": units, "prevalence": prevalence, "accuracy": [acc_a, acc_b],
        "n_boot": n_boot, "seed": seed, "skipped_degenerate": skipped, "true": truth,
        "coverage": {m: {s: hits[(m, s)] / done for s in truth} for m in METHODS},
        "truth_below_interval": per(below), "truth_above_interval": per(above), "undefined": per(undefined),
        "mean_width": {m: {s: float(np.mean(widths[(m, s)])) if widths[(m, s)] else None for s in truth}
                       for m in METHODS},
    }


def simulate(replications: int, units: int, prevalence: float, acc_a: float, acc_b: float, n_boot: int,
             method: str, seed: int) -> dict[str, object]:
    """One scenario, one method (the shape of ``--json`` without ``--grid``)."""
    c = cell(replications, units, prevalence, acc_a, acc_b, n_boot, seed)
    return {
        "replications": replications, "units": units, "prevalence": prevalence, "accuracy": [acc_a, acc_b],
        "n_boot": n_boot, "method": method, "seed": seed, "skipped_degenerate": c["skipped_degenerate"],
        "true": c["true"], "coverage": c["coverage"][method], "mean_width": c["mean_width"][method],
        "truth_below_interval": c["truth_below_interval"][method],
        "truth_above_interval": c["truth_above_interval"][method],
    }


def grid(replications: int, n_boot: int, accuracy: list[float], seed: int, path: Path | None) -> dict[str, object]:
    """Every cell of units x prevalence; the JSON is rewritten after each cell (an interrupted run keeps its cells)."""
    out: dict[str, object] = {
        "design": {"units": list(GRID_UNITS), "prevalence": list(GRID_PREVALENCE), "accuracy": accuracy,
                   "replications_per_cell": replications, "resamples_per_replication": n_boot, "level": 0.95,
                   "methods": list(METHODS), "statistics": ["cohen_kappa", "krippendorff_alpha"],
                   "note": "percentile and BCa from the same resamples; kappa and alpha from the same unit draws"},
        "cells": [], "complete": False,
    }
    start = time.perf_counter()
    for i, (units, prevalence) in enumerate((u, p) for u in GRID_UNITS for p in GRID_PREVALENCE):
        t0 = time.perf_counter()
        c = cell(replications, units, prevalence, *accuracy, n_boot, seed + i)
        c["seconds"] = round(time.perf_counter() - t0, 1)
        out["cells"].append(c)
        out["seconds"] = round(time.perf_counter() - start, 1)
        out["complete"] = len(out["cells"]) == len(GRID_UNITS) * len(GRID_PREVALENCE)
        cov = c["coverage"]
        print(f"n={units:<5} prevalence {prevalence:<4}: " + "; ".join(
            f"{m} kappa {cov[m]['cohen_kappa']:.3f} alpha {cov[m]['krippendorff_alpha']:.3f}" for m in METHODS)
            + f" ({c['seconds']} s)", flush=True)
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(out, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replications", type=int, default=1000)
    p.add_argument("--units", type=int, default=200)
    p.add_argument("--prevalence", type=float, default=0.3)
    p.add_argument("--accuracy", type=float, nargs=2, default=[0.9, 0.85])
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--method", choices=["bca", "percentile"], default="bca")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--grid", action="store_true", help="every cell of units 30/100/1000 x prevalence 0.05/0.2/0.5")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.grid:
        grid(args.replications, args.n_boot, list(args.accuracy), args.seed, args.json)
        return 0
    start = time.perf_counter()
    result = simulate(args.replications, args.units, args.prevalence, *args.accuracy, args.n_boot, args.method, args.seed)
    result["seconds"] = round(time.perf_counter() - start, 2)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

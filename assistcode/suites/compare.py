"""Comparing a suite's configurations on the same units: agreement with the gold (overall and per code, with
intervals), tokens, cost and time per segment, paired bootstrap differences between configurations, the human
ceiling and the similarity floor, and the Pareto front of agreement against cost."""
from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np

from .. import __version__
from ..agreement.coefficients import alpha_estimator
from ..agreement.uncertainty import paired_difference
from ..errors import AgreementError, InputError
from ..evaluate import EvalOptions, from_store
from ..evaluate.harness import estimate_row
from ..project import Project
from ..runs import store as rs
from ..store.db import now, transaction
from .runner import FLOOR_LABEL, codebook_for, gold_coders, split
from .spec import Suite

REFERENCE = "gold"


def compare(project: Project, suite: Suite) -> dict[str, Any]:
    """The comparison, as plain JSON-ready data."""
    db = project.db
    runs = {label: (coder, seconds, json.loads(cfg)) for label, coder, seconds, cfg in db.execute(
        "SELECT label, coder, seconds, config FROM suite_runs WHERE suite = ?", (suite.name,))}
    labels = [c["label"] for c in suite.configurations() if c["label"] in runs]
    if suite.spec.floor and FLOOR_LABEL in runs:
        labels.append(FLOOR_LABEL)
    if not labels:
        raise InputError(f"suite {suite.name!r} has no results yet", hint=f"run it first: assistcode suite run {suite.path}")
    gold = gold_coders(project, suite)
    codebook = codebook_for(project, suite)
    _, test = split(project, suite)
    coders = gold + [runs[label][0] for label in labels]
    data = from_store(db, coders, codebook)
    mask = np.isin(np.array(data.units), np.array(test))
    data = data.restrict(mask)
    data = data.with_consensus(REFERENCE, coders=gold)  # the gold coders' majority (one coder: their codes)
    clusters = np.array(data.clusters) if data.clusters else None
    n_boot, seed = suite.spec.n_boot, suite.spec.seed
    opts = EvalOptions(n_boot=n_boot, seed=seed)
    ref_row = data.row(REFERENCE)
    out_configs = []
    sets = {}
    for label in labels:
        coder, seconds, cfg = runs[label]
        row = data.row(coder)
        both = np.array([a is not None and b is not None for a, b in zip(row, ref_row)])
        sets[label] = row
        sub = data.restrict(both)
        sub_clusters = np.array(sub.clusters) if sub.clusters else None
        overall = estimate_row("krippendorff_alpha", sub.set_matrix([coder, REFERENCE]), opts, sub_clusters, level="masi")
        per_code = {}
        for code in data.codes:
            per_code[code] = estimate_row("cohen_kappa", sub.binary(code, [coder, REFERENCE]), opts, sub_clusters)
        run = rs.get_run(db, coder)
        counts = rs.segment_counts(db, run.id)
        n_seg = max(run.manifest.get("corpus", {}).get("segments", 0) or counts.get("ok", 0) + counts.get("failed", 0), 1)
        cost = counts.get("cost_usd")
        out_configs.append({
            "label": label, "coder": coder, "config": cfg, "units": int(both.sum()),
            "coverage": float(both.sum() / max(len(row), 1)),
            "alpha": overall, "per_code_kappa": per_code,
            "tokens_per_segment": (counts.get("prompt_tokens", 0) + counts.get("completion_tokens", 0)) / n_seg,
            "cost_usd": cost, "seconds_per_segment": seconds / n_seg if seconds else None,
            "failed": counts.get("failed", 0),
            "manifest": {k: run.manifest.get(k) for k in ("provider", "parameters", "template", "codebook", "examples")},
        })
    ceiling = None
    if len(gold) > 1:
        ceiling = estimate_row("krippendorff_alpha", data.set_matrix(gold), opts, clusters, level="masi")
    paired = []
    for a, b in itertools.combinations(labels, 2):
        ra, rb = sets[a], sets[b]
        keep = np.array([x is not None and y is not None and z is not None for x, y, z in zip(ra, rb, ref_row)])
        if keep.sum() < 2:
            continue
        pick = np.flatnonzero(keep)
        ga = [[ra[i] for i in pick], [ref_row[i] for i in pick]]
        gb = [[rb[i] for i in pick], [ref_row[i] for i in pick]]
        try:
            d = paired_difference(alpha_estimator(ga, "masi"), alpha_estimator(gb, "masi"), n_boot=max(n_boot, 2),
                                  clusters=clusters[pick] if clusters is not None else None, seed=seed)
        except AgreementError as exc:
            paired.append({"a": a, "b": b, "value": None, "note": str(exc)})
            continue
        verdict = ("distinguishable from zero: " + (a if d.value > 0 else b) + " agrees more with the gold"
                   if d.distinguishable else "not distinguishable from zero at this sample size")
        paired.append({"a": a, "b": b, "value": d.value, "low": d.low, "high": d.high, "units": d.n_units,
                       "distinguishable": d.distinguishable, "verdict": verdict, "method": d.method,
                       "n_undefined": d.n_undefined})
    axis = "cost_usd" if any((c["cost_usd"] or 0) > 0 for c in out_configs) else "seconds_per_segment"
    front = pareto(out_configs, axis)
    return {
        "suite": suite.name, "suite_hash": suite.hash,
        "reference": f"the majority of {', '.join(gold)}" if len(gold) > 1 else gold[0],
        "gold_coders": gold, "units": len(data.units), "split": suite.spec.split.model_dump() if suite.spec.split else None,
        "codebook": {"name": codebook.name, "hash": codebook.hash}, "configurations": out_configs,
        "ceiling": ceiling, "floor": FLOOR_LABEL if FLOOR_LABEL in labels else None, "paired": paired,
        "pareto": {"axis": axis, "front": front}, "package": __version__, "created_at": now(),
        "codes": list(data.codes),
    }


def pareto(configs: list[dict[str, Any]], axis: str) -> list[str]:
    """Configurations no other beats on both agreement (higher) and cost (lower)."""
    points = [(c["label"], c["alpha"].get("value"), c.get(axis) or 0.0) for c in configs if c["alpha"].get("value") is not None]
    front = []
    for label, a, cost in points:
        if not any((a2 >= a and c2 <= cost) and (a2 > a or c2 < cost) for _, a2, c2 in points):
            front.append(label)
    return front


def record(project: Project, suite: Suite, result: dict[str, Any]) -> int:
    """Store a report with its manifest, for ``suite history``."""
    manifest = {"suite_hash": suite.hash, "codebook": result["codebook"], "package": result["package"],
                "configurations": {c["label"]: c["manifest"] for c in result["configurations"]}}
    summary = {k: v for k, v in result.items() if k != "configurations"}
    summary["configurations"] = [{k: v for k, v in c.items() if k not in ("manifest", "per_code_kappa")}
                                 for c in result["configurations"]]
    with transaction(project.db):
        cur = project.db.execute("INSERT INTO suite_results (suite, suite_hash, created_at, manifest, result) "
                                 "VALUES (?, ?, ?, ?, ?)", (suite.name, suite.hash, result["created_at"],
                                                            json.dumps(manifest), json.dumps(summary)))
    return int(cur.lastrowid)


def history(project: Project, suite_name: str) -> list[dict[str, Any]]:
    rows = project.db.execute("SELECT id, created_at, suite_hash, manifest, result FROM suite_results WHERE suite = ? "
                              "ORDER BY id", (suite_name,)).fetchall()
    out = []
    for id_, created, h, manifest, result in rows:
        m, r = json.loads(manifest), json.loads(result)
        out.append({"id": id_, "created_at": created, "suite_hash": h, "codebook": m["codebook"],
                    "package": m["package"],
                    "templates": {label: (cm.get("template") or {}) for label, cm in m["configurations"].items()},
                    "alpha": {c["label"]: c["alpha"].get("value") for c in r["configurations"]}})
    return out

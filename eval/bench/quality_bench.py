"""Which offline method codes best (issue 12, "Measure"): one run per method on the same units, agreement with the
reference with 95% intervals, paired bootstrap differences against today's ``deductive`` template (resampling
documents), and the cost of each method on the local model as ratios to ``deductive``.

Data sets:
- the seed gold standard (20 quotes, 3 exclusive themes, coded by the paper's authors);
- ConvAbuse (CC BY 4.0), the seeded sample stratified on "abusive" (200 by default), with the annotators' majority
  as the reference and, per label, the annotators' median kappa with the majority of the others beside it.

Methods: ``deductive`` (generated JSON), ``score-choice`` (exclusive codebooks only) and ``score-per-code``, each raw
(calibration none), contextual (content-free inputs) and cross-fitted (Platt map and per-code thresholds fitted on
the reference's labels of other documents only), and ``similarity`` (cross-fitted the same way). Calibrated
variants reuse the raw run's cached calls: they cost nothing more, and their cost is the raw run's.

Tokens per segment are the tokens the model evaluated: for the scoring templates the count after prefix reuse (what
``LocalProvider.score`` reports); for ``deductive``, the prompt tokens past the prefix shared with the previous call
(llama.cpp reuses it) plus the generated tokens.

    nice python eval/bench/quality_bench.py [--data /work/shared/data/convabuse] [--sample 200]
        [--model qwen2.5-coder-1.5b] [--skip-seed] [--skip-convabuse] [--json eval/bench/results/quality.json]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402

from assistcode.agreement.coefficients import AgreementWarning, alpha_estimator  # noqa: E402
from assistcode.agreement.summary import estimator_for  # noqa: E402
from assistcode.agreement.uncertainty import paired_difference  # noqa: E402
from assistcode.errors import AgreementError  # noqa: E402
from assistcode.evaluate import EvalOptions, from_store  # noqa: E402
from assistcode.evaluate.harness import estimate_row as _est  # noqa: E402
from assistcode.corpus import context_text, iter_segments, preceding  # noqa: E402
from assistcode.runs.engine import Engine, RunConfig  # noqa: E402
from assistcode.runs.selection import select_segments  # noqa: E402
from assistcode.similarity import run_similarity  # noqa: E402

CROSS_FITTED = "platt"
"""The labelled calibration measured as "cross-fitted" (the default with --calibrate-with)."""


def _run(project: Any, config: RunConfig, ids: list[str], budget: float | None = None,
         contexts: dict[str, str] | None = None) -> tuple[str, float, int]:
    """As ``code_project`` on ``ids``, stopped cleanly (the segments done so far kept and, for a scoring run,
    calibrated) once ``budget`` seconds are spent. Returns the run's coder, its seconds and the segments it did.
    ``contexts`` (segment id -> text) stands in for the preceding turns where a data set keeps them elsewhere."""
    start = time.perf_counter()
    everything = list(iter_segments(project.db))
    wanted = set(ids)
    segments = [s for s in select_segments(everything, config) if s.id in wanted]
    holder: dict[str, Engine] = {}

    def progress(state: dict[str, Any]) -> None:
        if budget is not None and time.perf_counter() - start > budget:
            holder["engine"].stopped = f"the benchmark's time budget of {budget:g} s was spent"

    engine = holder["engine"] = Engine(project.db, project.codebook(), config, project_dir=project.path, progress=progress)
    if config.context_turns:
        engine.contexts = {k: context_text(v) for k, v in preceding(everything, config.context_turns).items()
                           if k in wanted and v}
        if contexts is not None:
            engine.contexts = {k: v for k, v in contexts.items() if k in wanted and v}
    result = asyncio.run(engine.run(segments))
    return result.run.coder, time.perf_counter() - start, result.counts["ok"]


def _deductive_evaluated_tokens(project: Any, config: RunConfig, ids: list[str], coder: str) -> float:
    """Tokens llama.cpp evaluated for a generative run taken one segment after another: each prompt past the prefix
    it shares with the previous one, plus the generated tokens."""
    from assistcode.providers.local import LocalProvider

    engine = Engine(project.db, project.codebook(), config)
    provider = LocalProvider(model=config.model)
    from assistcode.providers.local import load

    llm = load(provider.path, provider.n_ctx, provider.n_threads)
    segs = {s.id: s for s in project.segments()}
    previous: list[int] = []
    evaluated = 0
    for sid in ids:
        tokens = provider._prompt_tokens(llm, list(engine.render([segs[sid]]).messages))
        common = 0
        while common < min(len(tokens), len(previous)) and tokens[common] == previous[common]:
            common += 1
        evaluated += len(tokens) - common
        previous = tokens
    completion = project.db.execute("SELECT coalesce(sum(completion_tokens), 0) FROM run_segments r JOIN runs u "
                                    "ON u.id = r.run_id WHERE u.coder = ?", (coder,)).fetchone()[0]
    return float(evaluated + completion)


def _evaluated_tokens(project: Any, coder: str) -> float:
    return float(project.db.execute("SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) FROM run_segments r "
                                    "JOIN runs u ON u.id = r.run_id WHERE u.coder = ?", (coder,)).fetchone()[0])


def methods(project: Any, model: str, ids: list[str], reference: str, *, choice: bool, provider: str = "local",
            score_budget: float | None = None, deductive_budget: float | None = None) -> dict[str, dict[str, Any]]:
    """Run every method on ``ids`` (the scoring templates first, deductive last: each within its time budget);
    name -> {coder, segments done, seconds and evaluated tokens per segment done}."""
    out: dict[str, dict[str, Any]] = {}
    base = dict(provider=provider, model=model, concurrency=1, max_tokens=512)
    templates = (["score-choice"] if choice else []) + ["score-per-code"]
    for template in templates:
        coder, seconds, n = _run(project, RunConfig(template=template, **base), ids, score_budget)
        cost = {"segments_done": n, "seconds_per_segment": seconds / max(n, 1),
                "tokens_per_segment": _evaluated_tokens(project, coder) / max(n, 1)}
        out[f"{template} raw"] = {"coder": coder, **cost}
        coder, _, _ = _run(project, RunConfig(template=template, calibration="contextual", **base), ids)
        out[f"{template} contextual"] = {"coder": coder, **cost, "cost_note": "the raw run's calls, from the cache"}
        coder, _, _ = _run(project, RunConfig(template=template, calibration=CROSS_FITTED, calibrate_with=reference,
                                              **base), ids)
        out[f"{template} cross-fitted"] = {"coder": coder, **cost, "cost_note": "the raw run's calls, from the cache"}
    start = time.perf_counter()
    result, _ = run_similarity(project, calibrate_with=reference)
    out["similarity"] = {"coder": result.run.coder, "segments_done": len(project.segments()),
                         "seconds_per_segment": (time.perf_counter() - start) / len(project.segments()),
                         "cost_note": "sentence embeddings, not the local model"}
    cfg = RunConfig(template="deductive", **base)
    coder, seconds, n = _run(project, cfg, ids, deductive_budget)
    done = [r[0] for r in project.db.execute("SELECT r.segment_id FROM run_segments r JOIN runs u ON u.id = r.run_id "
                                             "WHERE u.coder = ?", (coder,))]
    tokens = (_deductive_evaluated_tokens(project, cfg, [i for i in ids if i in set(done)], coder)
              if provider == "local" else _evaluated_tokens(project, coder))
    out["deductive"] = {"coder": coder, "segments_done": n, "seconds_per_segment": seconds / max(n, 1),
                        "tokens_per_segment": tokens / max(n, 1)}
    return out


def _paired(a_est: Any, b_est: Any, n_boot: int, clusters: np.ndarray) -> dict[str, Any]:
    try:
        d = paired_difference(a_est, b_est, n_boot=n_boot, clusters=clusters, seed=0)
    except AgreementError as exc:
        return {"value": None, "note": str(exc)}
    return {"value": d.value, "low": d.low, "high": d.high, "units": d.n_units, "above_zero": bool(d.low > 0)}


def agreement(project: Any, runs: dict[str, dict[str, Any]], reference: str, ids: list[str], n_boot: int,
              codes: list[str] | None = None) -> dict[str, Any]:
    """Per method: MASI alpha over code sets and Cohen's kappa (one label per unit where the codebook is exclusive,
    else per code), with intervals; paired differences against deductive."""
    codebook = project.codebook()
    coders = [r["coder"] for r in runs.values()]
    if reference == "consensus":
        data = from_store(project.db, None, codebook)
        humans = list(data.humans)
        data = data.with_consensus("consensus", coders=humans).subset(["consensus", *coders])
    else:
        data = from_store(project.db, [reference, *coders], codebook)
    keep = np.isin(np.array(data.units), np.array(ids)) & np.array([x is not None for x in data.row(reference)])
    everything = data.restrict(keep)
    opts = EvalOptions(n_boot=n_boot, seed=0)
    exclusive = codebook.exclusive

    def single(row: tuple) -> list[str]:
        return [sorted(s)[0] if s else "(none)" for s in row]

    def on(coders_: list[str]) -> Any:
        """The units every one of ``coders_`` (and the reference) coded."""
        mask = np.ones(len(everything.units), bool)
        for c in coders_:
            mask &= np.array([x is not None for x in everything.row(c)])
        return everything.restrict(mask)

    out: dict[str, Any] = {"units": len(everything.units), "documents": len(set(everything.clusters)), "methods": {}}
    base = runs["deductive"]["coder"]
    for name, r in runs.items():
        coder = r["coder"]
        data = on([coder])
        clusters = np.array(data.clusters)
        ref_sets = data.row(reference)
        entry: dict[str, Any] = {"units": len(data.units),
                                 "alpha_masi": _est("krippendorff_alpha", data.set_matrix([coder, reference]), opts,
                                                    clusters, level="masi")}
        if exclusive:
            entry["kappa"] = _est("cohen_kappa", [single(data.row(coder)), single(ref_sets)], opts, clusters)
        entry["kappa_per_code"] = {c: _est("cohen_kappa", data.binary(c, [coder, reference]), opts, clusters)
                                   for c in (codes or data.codes)}
        entry["codes_per_unit"] = float(np.mean([len(s) for s in data.row(coder)])) if data.units else None
        if name != "deductive":
            pair = on([coder, base])
            pc = np.array(pair.clusters)
            ref_p = pair.row(reference)
            d: dict[str, Any] = {"units": len(pair.units)}
            try:
                d["alpha_masi"] = _paired(alpha_estimator(pair.set_matrix([coder, reference]), "masi"),
                                          alpha_estimator(pair.set_matrix([base, reference]), "masi"), n_boot, pc)
                if exclusive:
                    d["kappa"] = _paired(estimator_for("cohen_kappa", [single(pair.row(coder)), single(ref_p)]),
                                         estimator_for("cohen_kappa", [single(pair.row(base)), single(ref_p)]), n_boot, pc)
                for c in (codes or [])[:1]:
                    d[f"kappa {c}"] = _paired(estimator_for("cohen_kappa", pair.binary(c, [coder, reference])),
                                              estimator_for("cohen_kappa", pair.binary(c, [base, reference])), n_boot, pc)
            except (AgreementError, ValueError) as exc:
                d["note"] = str(exc)
            entry["minus_deductive"] = d
        out["methods"][name] = entry
    return out


def costs(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    base = runs["deductive"]
    out = {}
    for name, r in runs.items():
        out[name] = {k: r.get(k) for k in ("seconds_per_segment", "tokens_per_segment", "cost_note") if r.get(k) is not None}
        if r.get("tokens_per_segment") is not None and name != "similarity" and base["segments_done"]:
            out[name]["seconds_ratio_to_deductive"] = r["seconds_per_segment"] / base["seconds_per_segment"]
            out[name]["tokens_ratio_to_deductive"] = r["tokens_per_segment"] / base["tokens_per_segment"]
    return out


def seed_part(folder: Path, model: str, n_boot: int, provider: str = "local", **budgets: float | None) -> dict[str, Any]:
    from assistcode import gold_standards
    from assistcode.project import Project

    project = Project.init(folder / "seed")
    gold_standards.load_into(project, "leadership-quality-safety")
    reference = next(r[0] for r in project.db.execute("SELECT name FROM coders WHERE kind = 'human'"))
    ids = [r[0] for r in project.db.execute("SELECT s.segment_id FROM seen s JOIN segments g ON g.id = s.segment_id "
                                             "WHERE s.coder = ? ORDER BY g.rowid", (reference,))]
    runs = methods(project, model, ids, reference, choice=True, provider=provider, **budgets)
    result = {"reference": reference, "segments": len(ids), **agreement(project, runs, reference, ids, n_boot),
              "cost": costs(runs)}
    project.close()
    return result


def restrict_labels(project: Any, labels: list[str], folder: Path) -> None:
    """Make a codebook of ``labels`` alone current, and leave the annotators' other codes out of the reference."""
    import yaml

    from assistcode.codebook import dump_yaml

    full = project.codebook()
    unknown = sorted(set(labels) - {c.id for c in full.codes})
    if unknown:
        raise SystemExit(f"--labels: no such code in the ConvAbuse codebook: {', '.join(unknown)}")
    body = yaml.safe_load(dump_yaml(full))
    body["codes"] = [c for c in body["codes"] if c["id"] in labels]
    for c in body["codes"]:
        c.pop("parent", None)
    path = folder / "codebook-subset.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    project.import_codebook(path)
    marks = ",".join("?" * len(labels))
    project.db.execute(f"DELETE FROM annotations WHERE code NOT IN ({marks})", labels)


def convabuse_part(folder: Path, data: Path | None, sample: int, model: str, n_boot: int,
                   provider: str = "local", labels: list[str] | None = None, **budgets: float | None) -> dict[str, Any]:
    from convabuse import load_project, prepare
    from convabuse_bench import _kappa, _majority

    prepared = prepare(folder / "convabuse-src", sample=sample, source=data)
    project = load_project(folder / "convabuse", prepared)
    if labels:
        restrict_labels(project, labels, folder)
    ids = [s.id for s in project.segments()]
    runs = methods(project, model, ids, "consensus", choice=False, provider=provider, **budgets)
    codebook = project.codebook()
    everyone = from_store(project.db, None, codebook)
    humans = list(everyone.humans)
    majority = everyone.with_consensus("consensus", coders=humans)
    prevalence = {c: float(np.nanmean(majority.binary(c, ["consensus"])[0])) for c in majority.codes}
    frequent = sorted(prevalence, key=lambda c: -prevalence[c])[:5]
    codes = [c for c in ["abusive"] + [c for c in frequent if c != "abusive"] if c in majority.codes]
    result = {"reference": "the annotators' majority", "items": prepared.n_items, "seed": 2021,
              "labels": labels or "all",
              "stratified": "half the annotators' majority abusive, half not", "five_most_frequent": frequent,
              "prevalence": prevalence, **agreement(project, runs, "consensus", ids, n_boot, codes=codes),
              "cost": costs(runs)}
    loo: dict[str, float | None] = {}
    for c in codes:
        people = everyone.binary(c, humans)
        vals = [_kappa(people[i], _majority(np.delete(people, i, axis=0)), 0)[0] for i in range(len(humans))]
        finite = [v for v in vals if v is not None]
        loo[c] = float(np.median(finite)) if finite else None
    result["annotator_vs_others_median_kappa"] = loo
    for name, m in result["methods"].items():
        vals = [m["kappa_per_code"].get(c, {}).get("value") for c in frequent]
        m["mean_kappa_five_most_frequent"] = float(np.mean(vals)) if all(v is not None for v in vals) else None
    project.close()
    return result


def convabuse_contexts(project: Any, turns: int) -> dict[str, str]:
    """ConvAbuse keeps each user turn as its own document, the conversation before it in the document's ``context``
    metadata (``agent: ... | user: ... | agent: ...``): the ``turns`` nearest turns of it, nearest last, one paragraph
    each, as the engine shows preceding turns (``turns=1``: the agent turn the user answers)."""
    import json

    out: dict[str, str] = {}
    for seg_id, meta in project.db.execute("SELECT s.id, d.metadata FROM segments s JOIN documents d "
                                           "ON d.id = s.document_id"):
        text = (json.loads(meta) or {}).get("context") or ""
        parts = [p.strip() for p in text.split(" | ") if p.strip()]
        if turns and parts:
            out[seg_id] = "\n\n".join(parts[-turns:])
    return out


def context_part(folder: Path, data: Path | None, sample: int, model: str, n_boot: int, turns: list[int],
                 template: str, provider: str = "local", labels: list[str] | None = None,
                 budget: float | None = None) -> dict[str, Any]:
    """One ``template`` run per setting of ``turns`` on the same ConvAbuse sample, raw and cross-fitted (the latter
    from the cache), kappa per label with intervals and the paired difference of each setting against the first."""
    from convabuse import load_project, prepare

    prepared = prepare(folder / "convabuse-src", sample=sample, source=data)
    project = load_project(folder / "convabuse", prepared)
    if labels:
        restrict_labels(project, labels, folder)
    ids = [s.id for s in project.segments()]
    base = dict(provider=provider, model=model, concurrency=1, max_tokens=512, template=template)
    runs: dict[str, dict[str, Any]] = {}
    shown: dict[int, int] = {}
    for n in turns:
        contexts = convabuse_contexts(project, n)
        shown[n] = sum(1 for i in ids if contexts.get(i))
        coder, seconds, done = _run(project, RunConfig(context_turns=n, **base), ids, budget, contexts)
        cost = {"segments_done": done, "seconds_per_segment": seconds / max(done, 1),
                "tokens_per_segment": _evaluated_tokens(project, coder) / max(done, 1)}
        runs[f"context {n} raw"] = {"coder": coder, "turns": n, **cost}
        coder, _, _ = _run(project, RunConfig(context_turns=n, calibration=CROSS_FITTED, calibrate_with="consensus",
                                              **base), ids, None, contexts)
        runs[f"context {n} cross-fitted"] = {"coder": coder, "turns": n, **cost,
                                             "cost_note": "the raw run's calls, from the cache"}
    codebook = project.codebook()
    everyone = from_store(project.db, None, codebook)
    data_ = everyone.with_consensus("consensus", coders=list(everyone.humans))
    data_ = data_.subset(["consensus", *[r["coder"] for r in runs.values()]])
    keep = np.isin(np.array(data_.units), np.array(ids))
    for r in runs.values():
        keep &= np.array([x is not None for x in data_.row(r["coder"])])
    data_ = data_.restrict(keep & np.array([x is not None for x in data_.row("consensus")]))
    clusters = np.array(data_.clusters)
    opts = EvalOptions(n_boot=n_boot, seed=0)
    codes = labels or list(data_.codes)
    methods_out: dict[str, Any] = {}
    for name, r in runs.items():
        entry: dict[str, Any] = {"turns": r["turns"], "units": len(data_.units),
                                 "kappa_per_code": {c: _est("cohen_kappa", data_.binary(c, [r["coder"], "consensus"]),
                                                            opts, clusters) for c in codes},
                                 "seconds_per_segment": r["seconds_per_segment"],
                                 "tokens_per_segment": r["tokens_per_segment"], "segments_done": r["segments_done"]}
        first = runs[name.replace(f"context {r['turns']}", f"context {turns[0]}")]
        if r["turns"] != turns[0]:
            entry[f"minus_context_{turns[0]}"] = {
                f"kappa {c}": _paired(estimator_for("cohen_kappa", data_.binary(c, [r["coder"], "consensus"])),
                                      estimator_for("cohen_kappa", data_.binary(c, [first["coder"], "consensus"])),
                                      n_boot, clusters) for c in codes}
        methods_out[name] = entry
    result = {"reference": "the annotators' majority", "items": prepared.n_items, "seed": 2021, "template": template,
              "labels": labels or "all", "stratified": "half the annotators' majority abusive, half not",
              "context": "the preceding turns of the conversation, from the item's context column (nearest last; "
                         "1: the agent turn the user answers)",
              "units_with_context_shown": {str(n): shown[n] for n in turns},
              "units": len(data_.units), "documents": len(set(data_.clusters)), "methods": methods_out}
    project.close()
    return result


def seed_context_note() -> dict[str, Any]:
    """Why the seed is not re-run with context: how many of its quotes have a turn before them (none)."""
    from assistcode import gold_standards
    from assistcode.project import Project

    with tempfile.TemporaryDirectory() as tmp:
        project = Project.init(Path(tmp) / "seed")
        gold_standards.load_into(project, "leadership-quality-safety")
        segs = list(iter_segments(project.db))
        before = preceding(segs, 1)
        n = sum(1 for s in segs if before.get(s.id))
        interviewer = sum(1 for s in segs if s.role == "interviewer")
        project.close()
    return {"segments": len(segs), "with_a_preceding_turn": n, "interviewer_turns": interviewer,
            "note": "not re-run with context: the seed has no interviewer turns and no roles (so the default is "
                    f"--context-turns 0); the {n} quotes with a turn before them follow another quote from the same "
                    "participant's passage, not a question, so there is no question an answer responds to"
            if interviewer == 0 else "the seed has interviewer turns: measure it"}


def _ci(e: dict[str, Any] | None) -> str:
    if not e or e.get("value") is None:
        return "n/a"
    if e.get("low") is None:
        return f"{e['value']:.2f}"
    return f"{e['value']:.2f} [{e['low']:.2f}, {e['high']:.2f}]"


def table(results: list[dict[str, Any]]) -> str:
    """The README table of one or more results files: a row per method and data set."""
    lines = ["| data set | method | units | alpha (MASI) | kappa | minus deductive: alpha | minus deductive: kappa "
             "| s per segment (x deductive) | evaluated tokens per segment (x deductive) |", "|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        for part, title in (("seed", "seed, 20 quotes, vs the authors"), ("convabuse", "ConvAbuse sample, vs the majority")):
            r = res.get(part)
            if not r:
                continue
            label = r.get("labels") if part == "convabuse" else None
            for name, m in r["methods"].items():
                kappa = m.get("kappa") or (m["kappa_per_code"].get(label[0]) if isinstance(label, list) else None)
                d = m.get("minus_deductive") or {}
                dk = d.get("kappa") or (d.get(f"kappa {label[0]}") if isinstance(label, list) else None)
                c = r["cost"].get(name, {})
                sec = c.get("seconds_per_segment")
                tok = c.get("tokens_per_segment")
                sec_s = f"{sec:.2f}" + (f" ({c['seconds_ratio_to_deductive']:.2f}x)" if "seconds_ratio_to_deductive" in c else "") if sec else "n/a"
                tok_s = f"{tok:,.0f}" + (f" ({c['tokens_ratio_to_deductive']:.2f}x)" if "tokens_ratio_to_deductive" in c else "") if tok else "n/a"
                what = title + (f" ({', '.join(label)})" if isinstance(label, list) else "")
                lines.append(f"| {what} | {name} | {m['units']} | {_ci(m['alpha_masi'])} | {_ci(kappa)} | "
                             f"{_ci(d.get('alpha_masi')) if d else '-'} | {_ci(dk) if d else '-'} | {sec_s} | {tok_s} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="folder holding ConvAbuseEMNLPfull.csv (default: eval/convabuse.py's)")
    p.add_argument("--sample", type=int, default=200)
    p.add_argument("--model", default="qwen2.5-coder-1.5b")
    p.add_argument("--provider", default="local", help="local (what is measured); mock checks the script's plumbing")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--skip-seed", action="store_true")
    p.add_argument("--skip-convabuse", action="store_true")
    p.add_argument("--score-budget", type=float, help="seconds a raw scoring run may take before it stops cleanly")
    p.add_argument("--deductive-budget", type=float, help="seconds the deductive run may take before it stops cleanly")
    p.add_argument("--labels", help="ConvAbuse: measure these labels alone (comma-separated ids; the codebook and the "
                   "reference are restricted to them), e.g. when the machine cannot afford a question per label")
    p.add_argument("--context-turns", type=int, nargs="+", metavar="N",
                   help="measure context alone: one --template run per N preceding turns shown (e.g. 0 1) on the "
                        "same ConvAbuse sample, kappa per label and the paired difference against the first N")
    p.add_argument("--template", default="score-per-code", help="with --context-turns: the template measured")
    p.add_argument("--json", type=Path)
    p.add_argument("--table", type=Path, nargs="+", help="print the README table of these results files and stop")
    args = p.parse_args(argv)
    if args.table:
        import json

        print(table([json.loads(f.read_text()) for f in args.table]))
        return 0
    budgets = {"score_budget": args.score_budget, "deductive_budget": args.deductive_budget}
    warnings.simplefilter("ignore", AgreementWarning)
    if args.context_turns:
        if any(n < 0 for n in args.context_turns):
            p.error("--context-turns: 0 or more")
        labels = [x.strip() for x in args.labels.split(",")] if args.labels else None
        out = {"provider": args.provider, "model": args.model, "budget_s": args.score_budget, "n_boot": args.n_boot,
               "cross_fitted": f"{CROSS_FITTED}, cross-fitted by document (5 folds)", "seed": seed_context_note()}
        with tempfile.TemporaryDirectory() as tmp:
            out["convabuse"] = context_part(Path(tmp), args.data, args.sample, args.model, args.n_boot,
                                            args.context_turns, args.template, args.provider, labels, args.score_budget)
        emit(out, args.json)
        return 0
    out: dict[str, Any] = {"provider": args.provider, "model": args.model, "budgets_s": budgets, "cross_fitted": f"{CROSS_FITTED}, cross-fitted by document (5 folds)",
                           "n_boot": args.n_boot}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_seed:
            out["seed"] = seed_part(Path(tmp), args.model, args.n_boot, args.provider, **budgets)
            emit(out, args.json, show=False)  # a partial result survives a later failure
        if not args.skip_convabuse:
            labels = [x.strip() for x in args.labels.split(",")] if args.labels else None
            out["convabuse"] = convabuse_part(Path(tmp), args.data, args.sample, args.model, args.n_boot, args.provider,
                                              labels=labels, **budgets)
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

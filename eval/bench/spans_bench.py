"""Speed of the unitizing alphas (assistcode.agreement.unitizing), measured in the same run as its baselines.

    python eval/bench/spans_bench.py [--quick] [--repeat 3] [--json eval/bench/results/spans_speed.json]

Cases (issue 16):
- large: 1,000 documents x 3 coders, 20,000 spans in all, 8 codes. One computation of every coefficient (u_alpha
  with its per-code values, |uα per code, c|uα, Cuα), then 1,000 bootstrap resamples of documents, reported as a
  ratio to one computation (targets: under 1 s, and under 60 s).
- small: one document of 2,000 characters, 3 coders, about 100 spans, 3 mutually exclusive codes; assistcode's
  ``unitizing_alpha`` (all coefficients) against krippendorff-unitized-alpha 0.1.0 (Cuα alone, the one coefficient
  it computes), with the values checked equal. pygamma-agreement computes a different coefficient (gamma, which
  assistcode delegates to it), so it has no speed ratio; ``--gamma`` times one call for information.

Coders are simulated: shared true units whose boundaries each coder moves by a few characters, with some units
missed and some coded with another code. Every timing is the best of ``--repeat`` runs (ten times as many on the
small case).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402

from assistcode.agreement.coefficients import AgreementWarning  # noqa: E402
from assistcode.agreement.unitizing import SpanCoding, unitizing_alpha, unitizing_bootstrap  # noqa: E402


def timed(fn, repeat: int):
    best, value = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def simulate(n_docs: int, n_coders: int, n_spans: int, n_codes: int, doc_length: tuple[int, int], seed: int,
             exclusive: bool = False) -> tuple[list[SpanCoding], dict[str, int]]:
    """About ``n_spans`` spans in all: true units per document, each coder's copy jittered, dropped or relabelled."""
    rng = np.random.default_rng(seed)
    lengths = {f"doc{d:05d}": int(rng.integers(*doc_length)) for d in range(n_docs)}
    kept = 0.92  # a coder misses 8% of the true units
    per_doc = rng.multinomial(round(n_spans / n_coders / kept), np.full(n_docs, 1 / n_docs))
    spans: list[SpanCoding] = []
    for (doc, length), n_units in zip(lengths.items(), per_doc):
        cuts = np.sort(rng.choice(np.arange(1, length), size=2 * max(1, int(n_units)), replace=False))
        units = cuts.reshape(-1, 2)  # disjoint true units
        codes = rng.integers(0, n_codes, len(units))
        for c in range(n_coders):
            for (s, e), code in zip(units, codes):
                if rng.random() > kept:
                    continue  # missed
                if exclusive:
                    lo, hi = int(s), int(e)
                else:
                    lo = int(np.clip(s + rng.integers(-4, 5), 0, length - 1))
                    hi = int(np.clip(e + rng.integers(-4, 5), lo + 1, length))
                code = code if rng.random() > 0.1 else rng.integers(0, n_codes)
                spans.append(SpanCoding(doc, lo, hi, f"coder{c}", f"code{int(code)}"))
    return spans, lengths


def large(args) -> dict:
    spans, lengths = simulate(args.docs, 3, args.spans, 8, (3_000, 8_000), seed=1)
    one_s, result = timed(lambda: unitizing_alpha(spans, lengths), args.repeat)
    boot_s, reps = timed(lambda: unitizing_bootstrap(spans, lengths, n_boot=args.boot, seed=0), 1)
    low, high = np.nanquantile(reps["u_alpha"], [0.025, 0.975])
    return {
        "documents": len(lengths), "coders": 3, "spans": len(spans), "codes": 8,
        "characters": int(sum(lengths.values())),
        "one_computation_s": round(one_s, 4), "target_one_s": 1.0,
        "bootstrap_resamples": args.boot, "bootstrap_s": round(boot_s, 3), "target_bootstrap_s": 60.0,
        "bootstrap_ratio_to_one": round(boot_s / one_s, 1),
        "values": {"u_alpha": round(result.u_alpha, 4), "u_alpha_95": [round(low, 4), round(high, 4)],
                   "cu_alpha": round(result.cu_alpha, 4), "Cu_alpha": round(result.Cu_alpha, 4),
                   "binary_code0": round(result.binary["code0"], 4)},
    }


def small(args) -> dict:
    spans, lengths = simulate(1, 3, 100, 3, (2_000, 2_001), seed=2, exclusive=True)
    (doc, length), = lengths.items()
    out: dict = {"documents": 1, "characters": length, "coders": 3, "spans": len(spans), "codes": 3,
                 "repeat": 10 * args.repeat}
    repeat = 10 * args.repeat  # milliseconds each: more runs for a stable best on a shared machine
    ours_s, ours = timed(lambda: unitizing_alpha(spans, lengths), repeat)
    out["assistcode_s"] = round(ours_s, 5)
    try:
        from krippendorff_unitized_alpha.krippendorffs_unitized_alpha import (
            EMPTY_TAG, KrippendorffUnitizedAlpha, Segment,
        )
    except ImportError as exc:
        out["krippendorff_unitized_alpha"] = f"not installed ({exc})"
    else:
        def reference() -> float:
            data = {}
            for coder in sorted({s.coder for s in spans}):
                segs, pos = [], 0
                for s in sorted((s for s in spans if s.coder == coder), key=lambda s: s.start):
                    if s.start > pos:
                        segs.append(Segment(EMPTY_TAG, pos, s.start))
                    segs.append(Segment(s.code, s.start, s.end))
                    pos = s.end
                if pos < length:
                    segs.append(Segment(EMPTY_TAG, pos, length))
                data[coder] = segs
            return KrippendorffUnitizedAlpha(data).result

        ref_s, ref = timed(reference, repeat)
        out["krippendorff_unitized_alpha"] = {
            "seconds": round(ref_s, 5), "speed_ratio": round(ref_s / ours_s, 1),
            "Cu_alpha": round(ours.Cu_alpha, 6), "reference_value": round(float(ref), 6),
            "equal_to_1e-9": bool(abs(ours.Cu_alpha - ref) <= 1e-9 * max(1.0, abs(ref))),
            "note": "the reference computes Cuα only; assistcode's time covers all coefficients"}
    if args.gamma:
        from assistcode.agreement.unitizing import gamma
        few = [s for s in spans if s.start < 400]
        start = time.perf_counter()
        value = gamma(few, {doc: 400})
        first = time.perf_counter() - start
        start = time.perf_counter()
        gamma(few, {doc: 400})
        out["pygamma_agreement"] = {"gamma": value, "spans": len(few), "first_call_s": round(first, 2),
                                    "second_call_s": round(time.perf_counter() - start, 2),
                                    "note": "different coefficient: no speed ratio; first call compiles (numba)"}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 documents, 2,000 spans, 100 resamples")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gamma", action="store_true", help="also time pygamma-agreement's gamma once (slow)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    args.docs, args.spans, args.boot = (100, 2_000, 100) if args.quick else (1_000, 20_000, 1_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AgreementWarning)
        result = {"benchmark": "spans_speed", "quick": args.quick, "repeat": args.repeat, "niceness": os.nice(0),
                  "timing": "wall clock; the bootstrap once, including building its per-document statistics",
                  "large": large(args), "small": small(args)}
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

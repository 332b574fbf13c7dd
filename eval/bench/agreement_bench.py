"""Speed of assistcode.agreement against reference implementations, measured in the same run.

Every method starts from the same raw coders x units matrix, so the baselines pay for building their own tables
(statsmodels' aggregate_raters, irrCAC's DataFrame). Values must agree to 1e-12 relative.

    python eval/bench/agreement_bench.py [--quick] [--json eval/bench/results/agreement.json]

Cases (from the issue): nominal alpha, Fleiss and AC1 on 3 coders x 200,000 units x 20 categories; Cohen's kappa on
1,000,000 pairs; 1,000 bootstrap resamples of alpha on 10,000 units x 3 coders (5 categories, percentile,
unclustered). The bootstrap baseline resamples units and calls krippendorff.alpha each time; it is timed on a
subset of resamples and reported per resample, since 1,000 calls take minutes.

Every timing, assistcode's and each baseline's, is the best of the same ``--repeat`` runs (default 3).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402

from assistcode.agreement import cohen_kappa, fleiss_kappa, gwet_ac1, krippendorff_alpha  # noqa: E402
from assistcode.agreement.summary import estimate  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, float]:
    best, value = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, float(value)


def data(coders: int, units: int, k: int, seed: int, accuracy: float = 0.7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, units)
    return np.where(rng.random((coders, units)) < accuracy, truth, rng.integers(0, k, (coders, units)))


def exact_fleiss_ac1(m: np.ndarray) -> tuple[float, float]:
    """Fleiss' kappa and AC1 of a complete integer matrix in exact rational arithmetic (a referee for 1e-12 claims:
    float references accumulate rounding over 200,000 units)."""
    from fractions import Fraction

    c, u = m.shape
    agree = sum(int(np.sum(m[i] == m[j])) for i in range(c) for j in range(i + 1, c))
    pa = Fraction(2 * agree, c * (c - 1) * u)
    cats, counts = np.unique(m, return_counts=True)
    pi = [Fraction(int(n), c * u) for n in counts]
    pe_f = sum(p * p for p in pi)
    pe_g = sum(p * (1 - p) for p in pi) / (len(cats) - 1)
    return float((pa - pe_f) / (1 - pe_f)), float((pa - pe_g) / (1 - pe_g))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller inputs (a smoke run, not the reported numbers)")
    p.add_argument("--repeat", type=int, default=3, help="runs per timing, the same for every side (best is kept)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    import krippendorff
    from irrCAC.raw import CAC
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import cohens_kappa, to_table
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    scale = 20 if args.quick else 1
    big = data(3, 200_000 // scale, 20, 1)
    pairs = data(2, 1_000_000 // scale, 5, 2)
    small = data(3, 10_000 // scale, 5, 3)
    rows = []

    def case(name: str, ours, refs: dict) -> None:
        t_ours, v_ours = timed(ours, args.repeat)
        entry = {"case": name, "assistcode_s": t_ours, "value": v_ours, "repeat": args.repeat, "baselines": {}}
        for ref_name, fn in refs.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_ref, v_ref = timed(fn, args.repeat)
            rel = abs(v_ref - v_ours) / max(abs(v_ours), 1e-300)
            entry["baselines"][ref_name] = {"seconds": t_ref, "value": v_ref, "speedup": t_ref / t_ours, "rel_diff": rel}
        fastest = min(entry["baselines"].values(), key=lambda b: b["seconds"])
        entry["speedup_vs_fastest"] = fastest["seconds"] / t_ours
        rows.append(entry)
        print(f"{name}: {t_ours * 1000:.1f} ms; "
              + "; ".join(f"{k} {b['seconds'] * 1000:.0f} ms ({b['speedup']:.1f}x, rel diff {b['rel_diff']:.1e})"
                          for k, b in entry["baselines"].items()), flush=True)

    frame = lambda m: pd.DataFrame(m.T)  # noqa: E731 - irrCAC wants units x raters
    case("nominal alpha, 3 x 200k x 20", lambda: krippendorff_alpha(big), {
        "krippendorff.alpha": lambda: krippendorff.alpha(reliability_data=big, level_of_measurement="nominal"),
        "irrCAC krippendorff": lambda: CAC(frame(big), digits=18).krippendorff()["est"]["coefficient_value"],
    })
    case("Fleiss kappa, 3 x 200k x 20", lambda: fleiss_kappa(big), {
        "statsmodels": lambda: sm_fleiss(aggregate_raters(big.T)[0], method="fleiss"),
        "irrCAC fleiss": lambda: CAC(frame(big), digits=18).fleiss()["est"]["coefficient_value"],
    })
    case("Gwet AC1, 3 x 200k x 20", lambda: gwet_ac1(big), {
        "irrCAC gwet": lambda: CAC(frame(big), digits=18).gwet()["est"]["coefficient_value"],
    })
    case("Cohen kappa, 1M pairs", lambda: cohen_kappa(pairs), {
        "scikit-learn": lambda: cohen_kappa_score(pairs[0], pairs[1]),
        "statsmodels": lambda: cohens_kappa(to_table(pairs.T)[0], return_results=False),
    })
    exact_f, exact_g = exact_fleiss_ac1(big)
    for entry, exact in ((rows[1], exact_f), (rows[2], exact_g)):
        entry["exact_value"] = exact
        entry["rel_diff_vs_exact"] = abs(entry["value"] - exact) / abs(exact)
        for b in entry["baselines"].values():
            b["rel_diff_vs_exact"] = abs(b["value"] - exact) / abs(exact)
        print(f"  {entry['case']}: exact {exact!r}; assistcode off by {entry['rel_diff_vs_exact']:.1e}, "
              + ", ".join(f"{k} by {b['rel_diff_vs_exact']:.1e}" for k, b in entry["baselines"].items()))
    # bootstrap
    n_boot = 1000
    t_boot, _ = timed(lambda: estimate("krippendorff_alpha", small, n_boot=n_boot, ci_method="percentile", seed=1).high,
                      args.repeat)
    sample = 20 if not args.quick else 5

    def loop() -> float:
        rng = np.random.default_rng(1)
        for _ in range(sample):
            idx = rng.integers(0, small.shape[1], small.shape[1])
            value = krippendorff.alpha(reliability_data=small[:, idx], level_of_measurement="nominal")
        return value

    t_loop, _ = timed(loop, args.repeat)
    per_resample = t_loop / sample
    rows.append({"case": f"bootstrap {n_boot} x alpha, 3 x 10k x 5 (percentile)", "assistcode_s": t_boot,
                 "baselines": {"krippendorff.alpha in a loop (extrapolated)": {
                     "seconds": per_resample * n_boot, "measured_resamples": sample, "repeat": args.repeat,
                     "speedup": per_resample * n_boot / t_boot}},
                 "speedup_vs_fastest": per_resample * n_boot / t_boot, "target_s": 2.0})
    print(f"bootstrap: {t_boot:.3f} s for {n_boot} resamples; krippendorff.alpha loop ~{per_resample * n_boot:.1f} s "
          f"({per_resample * n_boot / t_boot:.0f}x)")
    emit({"numpy": np.__version__, "quick": args.quick, "repeat": args.repeat, "cases": rows}, args.json, show=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The offline default on the seed gold standard: seconds per segment with llama.cpp's prefix reuse (the codebook
prefix is byte-identical across calls, so it is evaluated once), without it (the context reset before every call),
and with the batch template; and the model's agreement with the authors' codes, with intervals.

    python eval/bench/local_bench.py [--model qwen2.5-coder-1.5b] [--json eval/bench/results/local.json]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402

from assistcode import gold_standards  # noqa: E402
from assistcode.evaluate import EvalOptions, evaluate, from_store  # noqa: E402
from assistcode.project import Project  # noqa: E402
from assistcode.runs.engine import RunConfig, code_project  # noqa: E402


def one(name: str, config: RunConfig, folder: Path, n_boot: int) -> dict:
    project = Project.init(folder / name)
    gold_standards.load_into(project, "leadership-quality-safety")
    start = time.perf_counter()
    result = code_project(project, config)
    seconds = time.perf_counter() - start
    n = len(project.segments())
    report = evaluate(from_store(project.db, codebook=project.codebook()), EvalOptions(n_boot=n_boot))
    overall = {e["statistic"] + (f" ({e['convention'].split('level ')[-1]})" if "level " in e.get("convention", "") else ""):
               [e.get("value"), e.get("low"), e.get("high")] for e in report["overall"][0]["estimates"]}
    per_code = {r["code"]: {e["statistic"]: [e.get("value"), e.get("low"), e.get("high")] for e in r["estimates"]}
                for r in report["per_code"]}
    project.close()
    return {"seconds_per_segment": seconds / n, "seconds": seconds, "ok": result.counts["ok"],
            "failed": result.counts["failed"], "prompt_tokens": result.counts["prompt_tokens"],
            "agreement_with_authors": {"overall": overall, "per_code": per_code}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="qwen2.5-coder-1.5b")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    base = dict(provider="local", model=args.model, concurrency=1, max_tokens=512)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = {
            "deductive, prefix reused": one("reuse", RunConfig(**base), folder, args.n_boot),
            "deductive, context reset every call": one("reset", RunConfig(**base, provider_options={"reuse_prefix": False}),
                                                       folder, args.n_boot),
            "deductive-batch, 5 per call": one("batch", RunConfig(**base, template="deductive-batch", batch_size=5),
                                               folder, args.n_boot),
        }
    reuse, reset = results["deductive, prefix reused"], results["deductive, context reset every call"]
    emit({"model": args.model, "segments": 20, "configs": results,
          "prefix_reuse_speedup": reset["seconds_per_segment"] / reuse["seconds_per_segment"]}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

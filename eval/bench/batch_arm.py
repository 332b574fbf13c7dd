"""The Batch API arm of the scale benchmark (issue 15), as a function ``eval/bench/scale_bench.py`` calls.

Against a testing server (``python -m assistcode.testing.server --plan '{"batch": {"complete_after": 5}}'``, or
one started in-process) it codes every segment of a project through the Batch API in three commands, as a user
would: the first sends and stops (``--no-wait``: a kill after the batches were created), the second waits, reads
back and records, the third finds the run finished. It returns wall times against the scripted completion time,
the requests sent by each command (a resumed command sends none again), the cost against the synchronous price and
the process's peak memory.

    python eval/bench/batch_arm.py [--segments 2000 20000 --complete-after 5] [--json FILE]

Each size runs in a process of its own (peak memory is the process's), against a server process of its own.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from assistcode.runs.batch import BatchOptions  # noqa: E402
from assistcode.runs.batch_files import MAX_BYTES, MAX_REQUESTS  # noqa: E402
from assistcode.runs.engine import RunConfig, code_project  # noqa: E402
from assistcode.runs.pricing import price_for  # noqa: E402
from engine_bench import make_project  # noqa: E402


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def batch_arm(project: Any, base_url: str, *, complete_after: float, model: str = "gpt-4o-mini",
              poll_seconds: float = 0.25, max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES,
              **run_options: Any) -> dict[str, Any]:
    """Code ``project`` through the Batch API at ``base_url`` (a testing server whose plan's ``batch.complete_after``
    is ``complete_after`` seconds) in three commands, and return the figures. ``run_options``: more
    :class:`~assistcode.runs.engine.RunConfig` fields (``context_turns=0``, ``skip_roles=()``...)."""

    def config(wait: bool) -> RunConfig:
        return RunConfig(provider="openai", model=model, base_url=base_url, api_key="not-needed", timeout=60,
                         batch=BatchOptions(wait=wait, poll_seconds=poll_seconds, max_requests=max_requests,
                                            max_bytes=max_bytes), **run_options)

    t0 = time.perf_counter()
    sent = code_project(project, config(wait=False))  # sends, then stops: what a kill after creating leaves
    t1 = time.perf_counter()
    read = code_project(project, config(wait=True))  # the same command: polls, reads back, records
    t2 = time.perf_counter()
    again = code_project(project, config(wait=True))  # finished: nothing sent, nothing called
    t3 = time.perf_counter()
    c = read.counts
    full = price_for("openai", model)
    sync_cost = full.cost(c["prompt_tokens"], c["completion_tokens"]) if full else None
    subs = project.db.execute("SELECT count(*), coalesce(sum(bytes), 0) FROM batches WHERE run_id = ?",
                              (read.run.id,)).fetchone()
    total = t2 - t0
    n = read.total
    return {
        "segments": n, "ok": c["ok"], "failed": c["failed"],
        "files": subs[0], "bytes": subs[1],
        "scripted_completion_s": complete_after,
        "send_s": t1 - t0, "wait_and_read_back_s": t2 - t1, "total_s": total,
        "ratio_to_ideal": total / complete_after if complete_after > 0 else None,
        "overhead_ms_per_segment": 1000 * max(total - complete_after, 0.0) / max(n, 1),
        "requests_sent": {"first_command": (sent.batch or {}).get("sent_now"),
                          "resumed_command": (read.batch or {}).get("sent_now"),
                          "third_command": (getattr(again, "batch", None) or {}).get("sent_now", 0)},
        "synchronous_calls": read.calls + again.calls,
        "third_command": {"already_finished": again.already_finished, "seconds": t3 - t2},
        "cost_usd": c["cost_usd"], "cost_usd_at_synchronous_price": sync_cost,
        "cost_ratio": (c["cost_usd"] / sync_cost) if c["cost_usd"] is not None and sync_cost else None,
        "skipped_lines": {k: (read.batch or {}).get(k, 0) for k in ("malformed_lines", "unknown_ids", "duplicates")},
        "peak_rss_mib": _peak_rss_mib(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--segments", type=int, nargs="+", default=[2000])
    p.add_argument("--complete-after", type=float, default=5.0)
    p.add_argument("--json", type=Path)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a single size, in this process
    args = p.parse_args(argv)
    if not args.one:
        runs = []
        for n in args.segments:
            out = subprocess.run([sys.executable, __file__, "--one", "--segments", str(n), "--complete-after",
                                  str(args.complete_after)], capture_output=True, text=True, cwd=ROOT, check=True)
            runs.append(json.loads(out.stdout))
        from _report import emit

        result: dict[str, Any] = {"arm": "batch api", "scripted_completion_s": args.complete_after, "runs": runs}
        if len(runs) > 1:
            result["peak_rss_ratio_largest_to_smallest"] = runs[-1]["peak_rss_mib"] / runs[0]["peak_rss_mib"]
        emit(result, args.json)
        return 0
    plan = json.dumps({"batch": {"complete_after": args.complete_after}})
    proc = subprocess.Popen([sys.executable, "-m", "assistcode.testing.server", "--plan", plan],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        base_url = json.loads(proc.stdout.readline())["base_url"]
        with tempfile.TemporaryDirectory() as tmp:
            project = make_project(Path(tmp), args.segments[0])
            result = batch_arm(project, base_url, complete_after=args.complete_after, context_turns=0, skip_roles=())
            project.close()
    finally:
        proc.terminate()
        proc.wait()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Startup: `assistcode --version` and `assistcode segments` (a small project) against `python -c "import click"`,
in the same run, the same number of repeats each, interleaved so that a busy machine slows every side alike.

    python eval/bench/startup_bench.py --repeats 20 --json eval/bench/results/startup.json

Bytecode is cached as in an installed package (the first, untimed run of each command writes ``__pycache__``).
The figure is the median wall time of a fresh process; the ratio is assistcode's median over click's (target: at
most 5x). A command that imports scipy, pandas or a model SDK at startup shows up here at once.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import emit  # noqa: E402

TARGET = 5.0


# As installed: bytecode cached (click's is, in site-packages), so the first, untimed run may write __pycache__.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


def _project(folder: Path) -> Path:
    """A project of 20 short interviews (120 turns) for `assistcode segments`."""
    from assistcode.project import Project

    src = folder / "interviews"
    src.mkdir()
    for d in range(20):
        (src / f"i{d}.txt").write_text("\n".join(f"{'I' if t % 2 == 0 else 'R'}: turn {t} of interview {d}." for t in range(6)))
    with Project.init(folder / "proj") as p:
        p.import_corpus([src])
    return folder / "proj"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=20, help="Fresh processes per command (each side the same).")
    ap.add_argument("--json", type=Path, help="Write the result here.")
    args = ap.parse_args()
    py = sys.executable
    commands = {
        "click": [py, "-c", "import click"],
        "assistcode --version": [py, "-m", "assistcode", "--version"],
        "assistcode segments": [py, "-m", "assistcode", "segments", "--format", "jsonl", "--project", "proj"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _project(folder)
        for cmd in commands.values():  # warm the file cache once, untimed
            _time(cmd, folder)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                times[name].append(_time(cmd, folder))
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["click"]
    result = {
        "benchmark": "startup",
        "repeats": args.repeats,
        "median_seconds": {k: round(v, 4) for k, v in medians.items()},
        "ratio_to_click": {k: round(v / base, 2) for k, v in medians.items() if k != "click"},
        "target_ratio_at_most": TARGET,
        "met": all(v / base <= TARGET for k, v in medians.items() if k != "click"),
        "commands": {k: " ".join(Path(c).name if i == 0 else c for i, c in enumerate(v)) for k, v in commands.items()},
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()

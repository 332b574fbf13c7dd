"""A small mutation check: proof that the interval tests fail when the interval code is wrong.

Each mutation below is one deliberate bug in ``assistcode/agreement``. For each, the package and the agreement
tests are copied to a temporary folder (never touching the working tree), the bug is written into the copy, and the
tests named for it run against the copy. A mutation is *killed* when at least one test fails (pytest exit status 1);
anything else (the tests pass, or they cannot even run) counts as *survived*. The unmutated copy runs first and must
pass, and the copy must be the package the tests import.

    python eval/mutations.py [--json eval/results/mutations.json]

Seven pytest runs of three test files; exit status 0 when every mutation is killed. ``tests/agreement/test_mutation_targets.py``
checks in CI that every mutation still finds its line, so this script cannot silently go stale.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/agreement/test_bca.py", "tests/agreement/test_paired.py", "tests/agreement/test_uncertainty.py"]
DESELECT = "not coverage_simulation"  # the 1,000-replication simulation: minutes, and not needed to kill these


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    original: str
    mutant: str


UNCERTAINTY = "assistcode/agreement/uncertainty.py"
MUTATIONS = [
    Mutation("BCa bias correction with its sign flipped", UNCERTAINTY,
             "    z0 = ndtri(share)\n", "    z0 = -ndtri(share)\n"),
    Mutation("BCa acceleration with its sign flipped", UNCERTAINTY,
             "    a = (diff**3).sum() / denom if denom > 0 else 0.0\n",
             "    a = -(diff**3).sum() / denom if denom > 0 else 0.0\n"),
    Mutation("the percentile interval reported as BCa", UNCERTAINTY,
             "        probs = _bca_probs(theta, boots, jack, probs)\n", "        pass\n"),
    Mutation("paired difference accelerated by one side's leave-one-out values", UNCERTAINTY,
             "jack = jackknife(a, clusters) - jackknife(b, clusters) if", "jack = jackknife(a, clusters) if"),
    Mutation("estimate() drops clusters but reports a clustered interval", "assistcode/agreement/summary.py",
             "clusters=None if clusters is None else np.asarray(clusters), seed=seed)",
             "clusters=None, seed=seed)"),
    Mutation("PABAK standard error halved", UNCERTAINTY,
             "return float(2 * np.sqrt(po * (1 - po) / len(x)))", "return float(np.sqrt(po * (1 - po) / len(x)))"),
]


def copy_tree(dest: Path) -> None:
    """The package, the agreement tests and what they import, and the pytest configuration."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "assistcode", dest / "assistcode", ignore=ignore)
    (dest / "tests").mkdir()
    for name in ("__init__.py", "conftest.py"):
        shutil.copy2(ROOT / "tests" / name, dest / "tests" / name)
    shutil.copytree(ROOT / "tests" / "agreement", dest / "tests" / "agreement", ignore=ignore)
    shutil.copytree(ROOT / "eval", dest / "eval", ignore=shutil.ignore_patterns("__pycache__", "results", "bench"))
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")


def apply(root: Path, m: Mutation) -> None:
    path = root / m.path
    text = path.read_text()
    if text.count(m.original) != 1:
        raise SystemExit(f"mutations: {m.path}: the line to mutate for {m.name!r} occurs {text.count(m.original)} "
                         "times, not once; update eval/mutations.py")
    path.write_text(text.replace(m.original, m.mutant))


def pytest_run(root: Path) -> tuple[int, list[str], float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "-k", DESELECT, *TESTS],
                          cwd=root, env=env, capture_output=True, text=True, timeout=900)
    failed = re.findall(r"^FAILED (\S+)", proc.stdout, flags=re.M)
    return proc.returncode, failed, time.perf_counter() - start


def imported_from(root: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", "import assistcode.agreement, sys; print(assistcode.agreement.__file__)"],
                          cwd=root, capture_output=True, text=True, check=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return proc.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="assistcode-mutations-") as tmp:
        base = Path(tmp) / "base"
        copy_tree(base)
        where = imported_from(base)
        if not where.startswith(str(base)):
            print(f"mutations: the tests would import {where}, not the copy: nothing can be checked", file=sys.stderr)
            return 2
        code, failed, seconds = pytest_run(base)
        print(f"unmutated copy: pytest exit {code} ({seconds:.0f} s)", flush=True)
        if code != 0:
            print(f"mutations: the unmutated tests fail ({failed}); fix them first", file=sys.stderr)
            return 2
        for i, m in enumerate(MUTATIONS):
            root = Path(tmp) / f"m{i}"
            shutil.copytree(base, root)
            apply(root, m)
            code, failed, seconds = pytest_run(root)
            killed = code == 1 and bool(failed)
            results.append({"mutation": m.name, "file": m.path, "killed": killed, "pytest_exit": code,
                            "failing_tests": failed, "seconds": round(seconds, 1)})
            print(f"{'killed  ' if killed else 'SURVIVED'} {m.name}: " + (", ".join(t.split("::")[-1] for t in failed)
                  if failed else f"pytest exit {code}"), flush=True)
            shutil.rmtree(root)
    survived = [r["mutation"] for r in results if not r["killed"]]
    out = {"tests": TESTS, "deselected": DESELECT, "mutations": results, "killed": len(results) - len(survived),
           "total": len(results)}
    print(f"{out['killed']} of {out['total']} mutations killed")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if not survived else 1


if __name__ == "__main__":
    sys.exit(main())

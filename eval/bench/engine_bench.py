"""Run-engine throughput against a real local OpenAI-compatible server in its own process.

2,000 segments, 200 ms per call, concurrency 32, one call per segment: the engine's wall time (from its start,
imports and interpreter start-up excluded) against the ideal ``calls x latency / concurrency``; the same command
again (zero calls, from the cache); and the same 2,000 calls through a plain LangChain ``ChatOpenAI.batch(...,
max_concurrency=32)`` as the baseline, measured in the same run.

    python eval/bench/engine_bench.py [--segments 2000 --latency 0.2 --concurrency 32] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402

from assistcode.project import Project  # noqa: E402
from assistcode.runs.engine import RunConfig, code_project  # noqa: E402


def make_project(folder: Path, segments: int) -> Project:
    docs = max(1, segments // 20)
    corpus = folder / "corpus"
    corpus.mkdir()
    for d in range(docs):
        lines = [f"{'I' if t % 2 == 0 else 'R'}: interview {d} turn {t}: safety and leadership on the ward." for t in range(20)]
        (corpus / f"i{d:05d}.txt").write_text("\n".join(lines))
    (folder / "cb.yaml").write_text("codes:\n  - id: safety\n    definition: keeping patients safe\n"
                                    "  - id: leadership\n    definition: who leads\n")
    project = Project.init(folder / "proj")
    project.import_corpus([corpus])
    project.import_codebook(folder / "cb.yaml")
    return project


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "assistcode.testing.server", "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    return proc, json.loads(line)["base_url"]


def warm_up(base_url: str, n: int = 64) -> None:
    """A few concurrent requests first, so neither side is timed while the server starts its threads."""
    from concurrent.futures import ThreadPoolExecutor

    import openai

    client = openai.OpenAI(base_url=base_url, api_key="not-needed", max_retries=0)
    msgs = [{"role": "user", "content": 'Segment:\n"""\nwarm-up\n"""'}]
    with ThreadPoolExecutor(32) as ex:
        list(ex.map(lambda _: client.chat.completions.create(model="warm", messages=msgs), range(n)))


def langchain_baseline(base_url: str, prompts: list[list[dict[str, str]]], concurrency: int) -> float:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="fake", base_url=base_url, api_key="not-needed", max_retries=0, temperature=0)
    inputs = [[(m["role"], m["content"]) for m in p] for p in prompts]
    start = time.perf_counter()
    llm.batch(inputs, config={"max_concurrency": concurrency})
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--segments", type=int, default=2000)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    proc, base_url = start_server(args.latency)
    warm_up(base_url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            project = make_project(Path(tmp), args.segments)
            n = len(project.segments())
            config = RunConfig(provider="openai", model="fake", base_url=base_url, api_key="not-needed",
                               concurrency=args.concurrency, timeout=30)
            first = code_project(project, config)
            again = code_project(project, config)
            # the baseline sends the very prompts the engine sent
            from assistcode.runs.engine import Engine

            engine = Engine(project.db, project.codebook(), config)
            prompts = [list(engine.render([s]).messages) for s in project.segments()]
            baseline = langchain_baseline(base_url, prompts, args.concurrency)
    finally:
        proc.terminate()
        proc.wait()
    ideal = max(n * args.latency / args.concurrency, 1e-9)
    result = {
        "segments": n, "latency_s": args.latency, "concurrency": args.concurrency, "ideal_s": ideal,
        "engine": {"seconds": first.seconds, "calls": first.calls, "ratio_to_ideal": first.seconds / ideal,
                   "ok": first.counts["ok"], "failed": first.counts["failed"]},
        "same_command_again": {"seconds": again.seconds, "calls": again.calls, "already_finished": again.already_finished},
        "langchain_batch": {"seconds": baseline, "ratio_to_ideal": baseline / ideal,
                            "engine_speedup": baseline / first.seconds},
        "target": "engine within 1.10x of ideal",
    }
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

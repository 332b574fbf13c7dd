"""Corpora past one machine (issue 15): one process, two endpoints, Ray, and the Batch API, on the same corpus.

The testing server runs in its own processes with 200 ms per call; each endpoint gets 32 calls in flight (the
engine's concurrency is 32 per endpoint). Every arm codes a fresh copy of the same project (no cache shared) in a
child process, the one that writes the store, whose peak RSS is read from the kernel at its end:

- ``one``: the one-process engine, one endpoint, concurrency 32;
- ``two``: the one-process engine, two endpoints (two server processes), concurrency 64;
- ``ray``: ``--executor ray`` on a local cluster of 2 CPUs (2 workers), the same two endpoints, concurrency 64; its
  overhead per segment is its wall time less that of ``two``, over the segments;
- ``ray_kill``: the same, with one worker killed (SIGKILL) when half the segments are stored: rows stored twice;
- ``resume``: ``two`` killed (SIGKILL) when half the segments are stored, then the same run again: requests sent
  again for segments stored before the kill (each request names its segment), then once more on the finished run;
- ``small``: ``one`` on ``--small`` segments, for the writer's peak memory at 20,000 against 2,000;
- ``batch``: the Batch API (``eval/bench/batch_arm.py``) against a testing server that completes each batch
  ``--complete-after`` seconds after its creation: send and stop, resume, again; cost against the synchronous price.

Wall times are the engine's own (from its first call; Ray's start-up and the interpreter's are reported apart) as a
ratio to the ideal ``calls x latency / total concurrency``.

    python eval/bench/scale_bench.py [--segments 20000] [--small 2000] [--arms one,two,...] [--repeats 2] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402

ARMS = ("one", "two", "ray", "ray_kill", "resume", "small", "batch")
TAG = re.compile(r"\bS(\d{6})\b")


# -- the corpus and the servers ----------------------------------------------------------------------------------------
def make_project(folder: Path, segments: int) -> Path:
    """A project of ``segments`` turns (20 per document), each naming itself ``S000123``; returns its folder."""
    from assistcode.project import Project

    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    words = ["safety on the ward", "leadership and who decides", "the workload is heavy", "nothing much", "safety and leadership"]
    for d in range(-(-segments // 20)):
        turns = range(d * 20, min(segments, d * 20 + 20))
        (corpus / f"i{d:05d}.txt").write_text("\n".join(f"P: S{t:06d} {words[t % len(words)]}." for t in turns))
    (folder / "cb.yaml").write_text("codes:\n  - id: safety\n    definition: keeping patients safe\n"
                                    "  - id: leadership\n    definition: who leads\n  - id: workload\n"
                                    "    definition: too much to do\n")
    project = Project.init(folder / "proj")
    project.import_corpus([corpus])
    project.import_codebook(folder / "cb.yaml")
    with project.db:
        project.db.execute("UPDATE segments SET role = NULL")  # a plain corpus: every turn coded, no context
    project.close()
    shutil.rmtree(corpus)
    return folder / "proj"


class Server:
    """``python -m assistcode.testing.server`` in its own process."""

    def __init__(self, latency: float, **plan: Any) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "assistcode.testing.server", "--plan",
                                      json.dumps({"latency": latency, **plan})], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        self.base_url = json.loads(self.proc.stdout.readline())["base_url"]  # type: ignore[union-attr]
        self.root = self.base_url.rsplit("/v1", 1)[0]

    def cpu_s(self) -> float:
        """CPU seconds (user and system) the server process has used so far (Linux: /proc)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def log(self) -> list[dict[str, Any]]:
        return json.loads(urllib.request.urlopen(self.root + "/_control/log", timeout=120).read())

    def warm_up(self, n: int = 64) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import openai

        client = openai.OpenAI(base_url=self.base_url, api_key="not-needed", max_retries=0)
        msgs = [{"role": "user", "content": "warm-up"}]
        with ThreadPoolExecutor(32) as ex:
            list(ex.map(lambda _: client.chat.completions.create(model="warm", messages=msgs), range(n)))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def tags(entries: list[dict[str, Any]]) -> list[str]:
    return [m.group(1) for e in entries if e.get("kind") == "chat" for m in [TAG.search(e.get("last_message", ""))] if m]


def stored(project: Path) -> tuple[int, int, set[str]]:
    """(rows, distinct segments, their tags) of the project's run_segments, read beside the writer."""
    db = sqlite3.connect(f"file:{project / 'assistcode.db'}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute("SELECT r.segment_id, s.text FROM run_segments r JOIN segments s ON s.id = r.segment_id").fetchall()
    finally:
        db.close()
    found = {m.group(1) for _, text in rows for m in [TAG.search(text)] if m}
    return len(rows), len({r[0] for r in rows}), found


def stored_count(project: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{project / 'assistcode.db'}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM run_segments").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


# -- one arm, in a child process ------------------------------------------------------------------------------------
def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Code ``spec["project"]``; what the writer saw, and its peak RSS."""
    import threading

    from assistcode.project import Project
    from assistcode.runs.engine import Engine, RunConfig, code_project

    started = time.perf_counter()
    if spec.get("batch"):
        return batch_child(spec)
    urls = spec["urls"]
    if spec.get("executor") == "ray":  # Ray workers read the key from their environment, never as a value
        os.environ.setdefault("OPENAI_API_KEY", "not-needed")
    config = RunConfig(provider="openai", model="fake", base_url=urls[0], replicas=tuple(urls[1:]), api_key="not-needed",
                       concurrency=spec["concurrency"], timeout=30, executor=spec.get("executor", "process"))
    project = Project(Path(spec["project"]))
    provider = None
    provider_s = 0.0
    if config.executor == "ray":
        t0 = time.perf_counter()
        provider = Engine(project.db, project.codebook(), config, project_dir=project.path).provider
        provider_s = time.perf_counter() - t0
    killed: list[int] = []
    if spec.get("kill_worker_at"):
        victim = provider.worker_pids()[0]  # type: ignore[union-attr]

        def kill() -> None:
            while stored_count(Path(spec["project"])) < spec["kill_worker_at"]:
                time.sleep(0.2)
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

        threading.Thread(target=kill, daemon=True).start()
    cpu0 = _cpu_s()
    result = code_project(project, config, provider=provider)
    cpu = _cpu_s() - cpu0
    manifest = result.run.manifest if result.run else {}
    out = {"seconds": result.seconds, "calls": result.calls, "cache_hits": result.cache_hits,
           "ok": result.counts.get("ok"), "failed": result.counts.get("failed"),
           "already_finished": result.already_finished, "resumed": result.resumed,
           "peak_rss_mb": peak_rss_mb(), "peak_rss_source": PEAK_SOURCE,
           "writer_cpu_s": cpu, "writer_cpu_ms_per_call": 1000 * cpu / max(result.calls, 1),
           "ray_start_s": provider_s, "child_s": time.perf_counter() - started,
           "endpoints": (manifest.get("provider") or {}).get("endpoints"),
           "executor": (manifest.get("provider") or {}).get("executor"), "workers_killed": len(killed)}
    project.close()
    return out


PEAK_SOURCE = "VmHWM"
"""What ``peak_rss_mb`` reads: the high-water mark of the child's own memory (``/proc/self/status``). Not
``ru_maxrss``: Linux carries the parent's high-water mark into a child's ``ru_maxrss`` across its exec, so every
arm after the first read at least this bench's own peak (the server logs it holds), not the writer's."""


def peak_rss_mb() -> float:
    """The peak resident memory of this process itself, MB (MiB, as ``ru_maxrss / 1024`` was)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: may include the parent's peak


def _cpu_s() -> float:
    """CPU seconds of this process (user and system), threads included."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                         cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"arm failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the bench -----------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--segments", type=int, default=20000)
    p.add_argument("--small", type=int, default=2000, help="segments of the memory comparison")
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--per-endpoint", type=int, default=32, help="calls in flight per endpoint")
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--complete-after", type=float, default=30.0,
                   help="batch arm: seconds after which the testing server completes a batch")
    p.add_argument("--json", type=Path)
    p.add_argument("--merge", action="store_true", help="keep the other arms of an earlier --json file")
    p.add_argument("--repeats", type=int, default=1,
                   help="runs of each of one, small, two and ray, alternating; an arm's figures are its upper-median run's "
                        "(by wall time), every run kept in its 'runs'")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    for a in arms:
        if a not in ARMS:
            p.error(f"unknown arm {a!r}; arms: {', '.join(ARMS)}")
    n, lat, per = args.segments, args.latency, args.per_endpoint
    result: dict[str, Any] = {"segments": n, "latency_s": lat, "in_flight_per_endpoint": per, "arms": {},
                              "load_average_start": os.getloadavg()}
    if args.merge and args.json and args.json.exists():
        earlier = json.loads(args.json.read_text())
        if earlier.get("segments") != n:
            p.error(f"--merge: {args.json} has {earlier.get('segments')} segments, not {n}")
        result = {**earlier, "arms": {**earlier.get("arms", {})}}
    servers = [Server(lat), Server(lat)] if arms else []
    for s in servers:
        s.warm_up()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            template = make_project(Path(tmp) / "template", n)
            result["import_s"] = time.perf_counter() - t0

            def fresh(name: str, source: Path = template) -> Path:
                dest = Path(tmp) / name
                shutil.copytree(source.parent, dest)
                return dest / "proj"

            runs_of: dict[str, list[dict[str, Any]]] = {}

            def arm(name: str, urls: list[str], segments: int, rep: int = 0, **extra: Any) -> dict[str, Any]:
                concurrency = per * len(urls)
                before = [len(s.log()) for s in servers]
                cpu_before = sum(s.cpu_s() for s in servers)
                out = run_child({"project": str(extra.pop("project", None) or fresh(f"{name}{rep or ''}")), "urls": urls,
                                 "concurrency": concurrency, **extra})
                made = sum(len(s.log()) - b for s, b in zip(servers, before))
                ideal = out["calls"] * lat / concurrency
                # the servers share the machine's cores with the writer: their CPU says how much was left to it
                servers_cpu = sum(s.cpu_s() for s in servers) - cpu_before
                out.update(segments=segments, concurrency=concurrency, server_calls=made, ideal_s=ideal,
                           ratio_to_ideal=out["seconds"] / ideal if ideal else None,
                           servers_cpu_s=servers_cpu, servers_cpu_ms_per_call=1000 * servers_cpu / max(made, 1),
                           load_average=os.getloadavg(), revision=revision())
                runs_of.setdefault(name, []).append(out)
                result["arms"][name] = upper_median(runs_of[name])
                print(f"{name}: {out['seconds']:.1f} s, {out['ratio_to_ideal'] or 0:.3f}x ideal, "
                      f"{out['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
                return out

            one_url, two_urls = [s.base_url for s in servers[:1]], [s.base_url for s in servers]
            small_template = make_project(Path(tmp) / "small_template", args.small) if "small" in arms else None
            for rep in range(max(1, args.repeats)):  # one, small, two, one, small, two...: each side in the same states
                if "one" in arms:
                    arm("one", one_url, n, rep)
                if small_template is not None:  # right after "one": the same code, the same machine state
                    arm("small", one_url, args.small, rep, project=fresh(f"small{rep or ''}", small_template))
                if "two" in arms:
                    arm("two", two_urls, n, rep)
                if "ray" in arms:  # compared with two: as many runs
                    arm("ray", two_urls, n, rep, executor="ray")
            if "ray_kill" in arms:
                proj = fresh("ray_kill")
                out = arm("ray_kill", two_urls, n, executor="ray", kill_worker_at=n // 2, project=proj)
                rows, distinct, _ = stored(proj)
                out.update(rows=rows, distinct_segments=distinct, duplicates=rows - distinct)
            if "resume" in arms:
                result["arms"]["resume"] = {**resume(fresh("resume"), servers, two_urls, n, per), "revision": revision(),
                                            "load_average": os.getloadavg()}
            if "batch" in arms:
                result["arms"]["batch"] = {**batch_arm(fresh("batch"), n, lat, args.complete_after),
                                           "revision": revision(), "load_average": os.getloadavg()}
    finally:
        for s in servers:
            s.stop()
    derive(result)
    result["targets"] = {
        "two endpoints within 1.2x of ideal": _target(result["arms"].get("two", {}).get("ratio_to_ideal"), 1.2),
        "Ray overhead under 2 ms per segment (wall)": _target(result.get("ray_overhead_ms_per_segment"), 2.0),
        "Ray overhead under 2 ms per segment (CPU)": _target(result.get("ray_cpu_overhead_ms_per_segment"), 2.0),
        "0 duplicates after a worker is killed": _target(result["arms"].get("ray_kill", {}).get("duplicates"), 0),
        "0 requests re-sent on resume": _target(result["arms"].get("resume", {}).get("resent_for_stored"), 0),
        "0 requests re-sent on resume (Batch API)": _target(
            (result["arms"].get("batch", {}).get("requests_sent") or {}).get("resumed_command"), 0),
        "writer peak memory at 20,000 within 10% of 2,000": _target(result.get("writer_peak_rss_ratio_large_to_small"), 1.10),
    }
    emit(result, args.json)
    return 0


RUN_KEYS = ("seconds", "ratio_to_ideal", "peak_rss_mb", "peak_rss_source", "writer_cpu_s", "writer_cpu_ms_per_call", "servers_cpu_ms_per_call",
            "load_average", "ray_start_s")


def upper_median(outs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of an arm whose figures stand for it: the upper median by wall time (of two, the slower); with
    several runs, every run's figures in ``runs``."""
    chosen = sorted(outs, key=lambda o: o["seconds"])[len(outs) // 2]
    if len(outs) == 1:
        return chosen
    return {**chosen, "runs": [{k: o.get(k) for k in RUN_KEYS} for o in outs]}


def figure(arm: dict[str, Any], key: str) -> float:
    """An arm's ``key`` over its runs: the upper median (each side of a comparison read the same way)."""
    values = sorted(r[key] for r in arm.get("runs") or [arm])
    return values[len(values) // 2]


def revision() -> str:
    """The code an arm was measured with: the commit, ``+`` where the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "assistcode"], capture_output=True, text=True,
                               cwd=ROOT).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+" if dirty else "")


def derive(result: dict[str, Any]) -> None:
    """The figures that compare arms (those of this run, or merged from an earlier one)."""
    arms, n = result["arms"], result["segments"]
    if "one" in arms and "small" in arms:
        result["writer_peak_rss_ratio_large_to_small"] = figure(arms["one"], "peak_rss_mb") / figure(arms["small"], "peak_rss_mb")
        # the CPU of one more call, start-up apart (importing the SDK, building the clients: the same at any size)
        one, small = arms["one"], arms["small"]
        if one.get("writer_cpu_s") is not None and small.get("writer_cpu_s") is not None and one["calls"] > small["calls"]:
            result["writer_cpu_ms_per_extra_call"] = 1000 * (figure(one, "writer_cpu_s") - figure(small, "writer_cpu_s")) / (
                one["calls"] - small["calls"])
    if "two" in arms:
        result["two_writer_cpu_ms_per_call"] = arms["two"].get("writer_cpu_ms_per_call")
    if "ray" in arms and "two" in arms:
        ray_arm, two_arm = arms["ray"], arms["two"]
        result["ray_overhead_ms_per_segment"] = 1000 * (ray_arm["seconds"] - two_arm["seconds"]) / n
        # in CPU, which a shared machine's load does not move: the writer and its workers against the one-process
        # writer (Ray's own daemons not counted)
        workers = (ray_arm.get("executor") or {}).get("cpu_s_of_live_workers")
        if workers is not None and "writer_cpu_s" in two_arm and "writer_cpu_s" in ray_arm:
            result["ray_cpu_overhead_ms_per_segment"] = 1000 * (
                ray_arm["writer_cpu_s"] + workers - two_arm["writer_cpu_s"]) / n


def _target(value: float | None, at_most: float) -> str:
    if value is None:
        return "not measured"
    return ("met" if value <= at_most else "missed") + f" ({value:.3f})"


def resume(proj: Path, servers: list[Server], urls: list[str], n: int, per: int) -> dict[str, Any]:
    """Kill the writer (SIGKILL) when half the segments are stored; run it again; and once more."""
    spec = json.dumps({"project": str(proj), "urls": urls, "concurrency": per * len(urls)})
    before = sum(len(s.log()) for s in servers)
    proc = subprocess.Popen([sys.executable, __file__, "--child", spec], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    while stored_count(proj) < n // 2 and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    rows_before, _, stored_tags = stored(proj)
    marks = [len(s.log()) for s in servers]
    first_calls = sum(marks) - before
    again = run_child(json.loads(spec))
    asked = [t for s, m in zip(servers, marks) for t in tags(s.log()[m:])]
    third = run_child(json.loads(spec))
    rows, distinct, _ = stored(proj)
    return {"killed_after_rows": rows_before, "calls_before_kill": first_calls, "resume": again,
            "requests_on_resume": len(asked), "resent_for_stored": len(set(asked) & stored_tags),
            "rows": rows, "duplicates": rows - distinct,
            "same_command_on_finished_run": {"calls": third["calls"], "already_finished": third["already_finished"]}}


def batch_arm(proj: Path, n: int, latency: float, complete_after: float) -> dict[str, Any]:
    """The Batch API arm (issue 15 item 1, ``eval/bench/batch_arm.py``): a server whose batches complete
    ``complete_after`` seconds after they are created; send and stop, resume (wait, read back), and again."""
    if not (ROOT / "eval" / "bench" / "batch_arm.py").exists():
        return {"measured": False, "reason": "the Batch API arm (eval/bench/batch_arm.py) is not there"}
    server = Server(latency, batch={"complete_after": complete_after})
    try:
        out = run_child({"batch": True, "project": str(proj), "url": server.base_url, "complete_after": complete_after})
    finally:
        server.stop()
    out["ideal_s"] = complete_after
    return out


def batch_child(spec: dict[str, Any]) -> dict[str, Any]:
    from batch_arm import batch_arm as measure

    from assistcode.project import Project

    project = Project(Path(spec["project"]))
    try:
        out = measure(project, spec["url"], complete_after=spec["complete_after"], context_turns=0, skip_roles=())
    finally:
        project.close()
    out["peak_rss_mb"], out["peak_rss_source"] = peak_rss_mb(), PEAK_SOURCE
    return out


if __name__ == "__main__":
    sys.exit(main())

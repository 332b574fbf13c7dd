"""Codebooks from YAML and CSV, validated with messages that name the file, the line and the field.

YAML::

    name: Leadership for quality and safety
    codes:
      - id: distributed
        name: Leadership at every level
        definition: ...
        include: ...
        exclude: ...
        examples: ["..."]
        children:            # or give each sub-code a `parent:`
          - id: ordinary
            name: Ordinary leaders

CSV or XLSX (first sheet): a header with ``id,name`` and any of ``definition,include,exclude,examples,parent,color``;
several examples in one cell are separated by `` | ``. Other column names are mapped with ``columns``
(``--columns id=code,definition=description``).

Stored, each codebook is a version keyed by its hash (:func:`store_codebook`); the project's current version is
the last one stored or chosen (:func:`stored_codebook`, :func:`codebook_versions`).
"""
from __future__ import annotations

import csv
import functools
import io
import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import CodebookError, ProjectError
from .ids import canonical_json
from .model import Code, Codebook
from .store.db import now, transaction
from .textio import decode_bytes

if TYPE_CHECKING:
    from pydantic import ValidationError

    CodeSpec = Any  # the pydantic model built by _specs()

CSV_COLUMNS = ("id", "name", "definition", "include", "exclude", "examples", "parent", "color")


class _Specs(NamedTuple):
    CodeSpec: Any
    CodebookSpec: Any
    LineLoader: Any
    ValidationError: Any


@functools.cache
def _specs() -> _Specs:
    """The pydantic models of a codebook file and its line-recording YAML loader, built when a codebook file is first
    read: pydantic and PyYAML never load for a command that only reads the stored codebook."""
    import yaml
    from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

    from . import safeyaml

    class CodeSpec(BaseModel):
        """One code as written in a codebook file."""

        model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
        id: str
        """Short, stable identifier used in annotations and model replies."""
        name: str = ""
        """Human-readable name; defaults to the id."""
        definition: str = ""
        include: str = ""
        """When to apply the code."""
        exclude: str = ""
        """When not to apply it, even though it looks close."""
        examples: list[str] = Field(default_factory=list)
        parent: str | None = None
        color: str | None = None
        children: list["CodeSpec"] = Field(default_factory=list)

        @field_validator("id", mode="before")
        @classmethod
        def _id_text(cls, v: Any) -> Any:
            return str(v) if isinstance(v, (int, float)) else v

        @field_validator("examples", mode="before")
        @classmethod
        def _examples_list(cls, v: Any) -> Any:
            return [v] if isinstance(v, str) else ([] if v is None else v)

    class CodebookSpec(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str = ""
        description: str = ""
        exclusive: bool = False
        """At most one code per unit (scoring with ``score-choice``; calibration proposes the most probable)."""
        codes: list[CodeSpec]

    class _LineLoader(safeyaml.SafeLoader):
        """A YAML loader that records each mapping's line as ``__line__``."""

    def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
        mapping = loader.construct_mapping(node, deep=True)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping

    _LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

    CodeSpec.model_rebuild()
    return _Specs(CodeSpec, CodebookSpec, _LineLoader, ValidationError)


def _strip_lines(value: Any, lines: dict[tuple, int], path: tuple = ()) -> Any:
    """Remove ``__line__`` keys, remembering each mapping's line under its location path."""
    if isinstance(value, dict):
        if "__line__" in value:
            lines[path] = value.pop("__line__")
        return {k: _strip_lines(v, lines, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_lines(v, lines, path + (i,)) for i, v in enumerate(value)]
    return value


def _line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _flatten(specs: list[CodeSpec], parent: str | None, lines: dict[tuple, int], loc: tuple,
             out: list[tuple[CodeSpec, str | None, int | None]]) -> None:
    for i, spec in enumerate(specs):
        here = loc + (i,)
        out.append((spec, spec.parent if spec.parent is not None else parent, _line_of(lines, here)))
        _flatten(spec.children, spec.id, lines, here + ("children",), out)


def validate_codes(entries: list[tuple[CodeSpec, str | None, int | None]], path: str | Path | None,
                   name: str = "", description: str = "") -> Codebook:
    """Check ids, names, parents and cycles; build the :class:`Codebook`."""
    seen: dict[str, int | None] = {}
    for spec, _, line in entries:
        if not spec.id:
            raise CodebookError("empty code id", path=path, line=line, field="id")
        if spec.id in seen:
            first = f" (first defined on line {seen[spec.id]})" if seen[spec.id] else ""
            raise CodebookError(f"duplicate code id {spec.id!r}{first}", path=path, line=line, field="id",
                                hint="every code needs its own id")
        seen[spec.id] = line
        if not (spec.name or spec.id).strip():
            raise CodebookError("empty code name", path=path, line=line, field="name")
    for spec, parent, line in entries:
        if parent is not None and parent not in seen:
            raise CodebookError(f"code {spec.id!r} names unknown parent {parent!r}", path=path, line=line,
                                field="parent", hint="use the id of a code in this codebook")
    parents = {spec.id: parent for spec, parent, _ in entries}
    for spec, _, line in entries:
        chain = [spec.id]
        while (up := parents[chain[-1]]) is not None:
            if up in chain:
                cycle = " -> ".join(chain[chain.index(up):] + [up])
                raise CodebookError(f"parent cycle {cycle}", path=path, line=line, field="parent",
                                    hint="a code cannot be its own ancestor")
            chain.append(up)
    codes = tuple(
        Code(id=s.id, name=s.name or s.id, definition=s.definition, include=s.include, exclude=s.exclude,
             examples=tuple(s.examples), parent=p, color=s.color)
        for s, p, _ in entries
    )
    if not codes:
        raise CodebookError("the codebook has no codes", path=path, field="codes")
    return Codebook(name=name, codes=codes, description=description)


def _raise_validation(exc: ValidationError, path: Path, lines: dict[tuple, int]) -> None:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    field = str(loc[-1]) if loc else None
    msg = err["msg"].lower()
    if err["type"] == "extra_forbidden":
        msg = f"unknown key {field!r}"
    raise CodebookError(msg, path=path, line=_line_of(lines, loc), field=field) from exc


def load_yaml(path: Path, text: str) -> Codebook:
    from . import safeyaml

    specs = _specs()
    raw = safeyaml.load(text, path, loader=specs.LineLoader, error=CodebookError)
    lines: dict[tuple, int] = {}
    if isinstance(raw, list):
        raw = {"codes": raw}
    if not isinstance(raw, dict):
        raise CodebookError("expected a mapping with a 'codes' list", path=path, line=1)
    data = _strip_lines(raw, lines)
    if not data.get("name"):
        data["name"] = path.stem
    try:
        spec = specs.CodebookSpec.model_validate(data)
    except specs.ValidationError as exc:
        _raise_validation(exc, path, lines)
        raise
    entries: list[tuple[CodeSpec, str | None, int | None]] = []
    _flatten(spec.codes, None, lines, ("codes",), entries)
    codebook = validate_codes(entries, path, spec.name, spec.description)
    return replace(codebook, exclusive=True) if spec.exclusive else codebook


def parse_columns(text: str | None) -> dict[str, str]:
    """``id=code,definition=description`` -> {"id": "code", "definition": "description"}: which column of a CSV or
    XLSX codebook holds each field."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        field, sep, column = part.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not column:
            raise CodebookError(f"expected FIELD=COLUMN, got {part.strip()!r}", field="--columns",
                                hint="e.g. id=code,definition=description")
        if field not in CSV_COLUMNS:
            raise CodebookError(f"unknown codebook field {field!r}", field="--columns", hint="fields: " + ", ".join(CSV_COLUMNS))
        out[field] = column
    return out


def load_csv(path: Path, text: str, columns: dict[str, str] | None = None) -> Codebook:
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    return _load_rows(path, header, ((reader.line_num, row) for row in reader), columns or {})


def load_xlsx(path: Path, columns: dict[str, str] | None = None) -> Codebook:
    """The first sheet of an Excel workbook, read as a CSV codebook (row 1: the header)."""
    import pandas as pd

    try:
        frame = pd.read_excel(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # openpyxl raises many kinds on a broken workbook
        raise CodebookError(f"cannot read the workbook: {exc}", path=path) from exc
    header = [str(c) for c in frame.columns]
    rows = ((i + 2, dict(zip(header, r))) for i, r in enumerate(frame.itertuples(index=False, name=None)))
    return _load_rows(path, header, rows, columns or {})


def _load_rows(path: Path, header: list[str], rows: Any, columns: dict[str, str]) -> Codebook:
    for field, column in columns.items():
        if column not in header:
            raise CodebookError(f"no column named {column!r} (for {field})", path=path, line=1, field="--columns",
                                hint="columns: " + ", ".join(header))
    rename = {column: field for field, column in columns.items()}
    fields = [rename.get(h, h) for h in header]
    unknown = [h for h, f in zip(header, fields) if f not in CSV_COLUMNS]
    if unknown:
        raise CodebookError(f"unknown column {unknown[0]!r}", path=path, line=1, field=unknown[0],
                            hint="columns: " + ", ".join(CSV_COLUMNS) + "; map others with --columns, e.g. "
                                 "--columns id=code,definition=description")
    if "id" not in fields:
        raise CodebookError("no 'id' column", path=path, line=1, field="id",
                            hint="name the column that holds the codes: --columns id=COLUMN")
    specs = _specs()
    entries: list[tuple[CodeSpec, str | None, int | None]] = []
    line = 1
    for line, row in rows:
        values = {rename.get(k, k): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(values.values()):
            continue
        examples = [e.strip() for e in values.pop("examples", "").split(" | ") if e.strip()]
        parent = values.pop("parent", "") or None
        color = values.pop("color", "") or None
        try:
            spec = specs.CodeSpec(**values, examples=examples, parent=parent, color=color)
        except specs.ValidationError as exc:
            _raise_validation(exc, path, {(): line})
            raise
        entries.append((spec, parent, line))
    return validate_codes(entries, path, path.stem)


def load_codebook(path: str | Path, encoding: str | None = None, columns: dict[str, str] | None = None) -> Codebook:
    """Read and validate a codebook from ``.yaml``/``.yml``, ``.csv``, ``.xlsx`` or a REFI-QDA ``.qdc``. ``columns``
    says which column of a CSV or XLSX holds each field (:func:`parse_columns`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if columns and suffix not in (".csv", ".xlsx"):
        raise CodebookError("--columns applies to CSV and XLSX codebooks", path=path, field="--columns")
    if suffix == ".qdc":
        from .refi import read_qdc

        return read_qdc(path)[0]
    if suffix == ".xlsx":
        if not path.exists():
            raise CodebookError("no such file", path=path)
        return load_xlsx(path, columns)
    if suffix not in (".yaml", ".yml", ".csv"):
        raise CodebookError(f"unsupported codebook format {suffix or '(none)'}", path=path,
                            hint="use .yaml, .yml, .csv, .xlsx or a REFI-QDA .qdc")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CodebookError(f"cannot read: {exc.strerror}", path=path) from exc
    text = decode_bytes(data, path=path, encoding=encoding).text
    if not text.strip():
        raise CodebookError("empty file", path=path)
    return load_csv(path, text, columns) if suffix == ".csv" else load_yaml(path, text)


def dump_yaml(codebook: Codebook) -> str:
    """The codebook as YAML that :func:`load_codebook` reads back to the same hash."""
    codes = []
    for c in codebook.codes:
        entry: dict[str, Any] = {"id": c.id, "name": c.name}
        for key in ("definition", "include", "exclude"):
            if getattr(c, key):
                entry[key] = getattr(c, key)
        if c.examples:
            entry["examples"] = list(c.examples)
        if c.parent:
            entry["parent"] = c.parent
        if c.color:
            entry["color"] = c.color
        codes.append(entry)
    body: dict[str, Any] = {"name": codebook.name, "description": codebook.description}
    if codebook.exclusive:
        body["exclusive"] = True
    body["codes"] = codes
    import yaml

    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


# -- storage: the ``codebooks`` table and the project's current version --------------------------------------------
def store_codebook(db: sqlite3.Connection, codebook: Codebook, source: str | None = None) -> bool:
    """Store a codebook version (once per hash) and make it current. Returns whether it was new."""
    with transaction(db):
        exists = db.execute("SELECT 1 FROM codebooks WHERE hash = ?", (codebook.hash,)).fetchone()
        if not exists:
            seq = db.execute("SELECT coalesce(max(seq), 0) + 1 FROM codebooks").fetchone()[0]
            db.execute(
                "INSERT INTO codebooks (hash, seq, name, description, body, source, created_at, exclusive) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (codebook.hash, seq, codebook.name, codebook.description,
                 canonical_json([c.as_dict() for c in codebook.codes]), source, now(), int(codebook.exclusive)),
            )
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('current_codebook', ?)", (codebook.hash,))
    return not exists


def stored_codebook(db: sqlite3.Connection, version: str | None = None) -> Codebook:
    """The current codebook, or the stored version whose hash starts with ``version``."""
    if version is None:
        row = db.execute("SELECT value FROM meta WHERE key = 'current_codebook'").fetchone()
        if row is None:
            raise ProjectError("this project has no codebook yet")
        version = row[0]
    rows = db.execute("SELECT name, description, body, exclusive FROM codebooks WHERE hash LIKE ?",
                      (version + "%",)).fetchall()
    if len(rows) != 1:
        raise ProjectError(f"{'no' if not rows else 'more than one'} codebook version matches {version!r}")
    name, description, body, exclusive = rows[0]
    codes = tuple(Code(**{**c, "examples": tuple(c["examples"])}) for c in json.loads(body))
    return Codebook(name=name, codes=codes, description=description, exclusive=bool(exclusive))


def codebook_versions(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every stored version, oldest first: seq, hash, name, number of codes, source, when, whether current."""
    current = db.execute("SELECT value FROM meta WHERE key = 'current_codebook'").fetchone()
    return [
        {"seq": r[0], "hash": r[1], "name": r[2], "codes": len(json.loads(r[3])), "source": r[4],
         "created_at": r[5], "current": bool(current and current[0] == r[1])}
        for r in db.execute("SELECT seq, hash, name, body, source, created_at FROM codebooks ORDER BY seq")
    ]

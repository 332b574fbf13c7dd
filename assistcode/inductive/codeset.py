"""What ``codebook compare`` compares: a set of codes and, where known, the units each was applied to.

An operand is a codebook file (YAML, CSV, QDC), a codebook version of the project (``version:HASH``), an inductive
run's candidates grouped into codes (``run:N``), or a table of a coder's free-text codes (``codes:FILE``, one row
per unit, codes ``;``-separated). Units are keyed by their normalised text, so a table of human codes and a run over
the same answers imported as a corpus line up without sharing ids.
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..textio import decode_bytes

_EDGE = re.compile(r"^[\W_]+|[\W_]+$")


def normalise_code(text: str) -> str:
    """A free-text code as compared: NFKC, case-folded, inner white space collapsed, edge punctuation stripped."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _EDGE.sub("", " ".join(text.split()))


_PLURAL = ((re.compile(r"(?<=[^aeiou])ies$"), "y"), (re.compile(r"(?<=ss|sh|ch)es$|(?<=[xz])es$"), ""),
           (re.compile(r"(?<![sui])(?<!ic)s$"), ""))
_NOT_PLURAL = frozenset({"news", "series", "species", "means", "lens", "always", "perhaps", "whereas"})


def singular(code: str) -> str:
    """A normalised code with its last word's regular English plural folded ("stories" -> "story", "emotions" ->
    "emotion"); words in -ss, -us, -is, -ics ("aesthetics"), short words and a few others ("news", "series") stay.
    Only a key: two spellings meet on it."""
    head, _, last = code.rpartition(" ")
    if len(last) < 4 or last in _NOT_PLURAL:
        return code
    for pattern, repl in _PLURAL:
        folded, n = pattern.subn(repl, last)
        if n:
            return f"{head} {folded}" if head else folded
    return code


def unit_key(text: str) -> str:
    """How units of two operands are matched: their text, white space collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


@dataclass
class CodeEntry:
    id: str
    name: str
    definition: str = ""
    members: int = 0
    """Proposals or spellings this code gathers (induced codes, free-text codes)."""

    @property
    def text(self) -> str:
        """What its meaning is judged on: the name, and the definition where there is one."""
        return f"{self.name}: {self.definition}" if self.definition else self.name


@dataclass
class CodeSet:
    label: str
    kind: str
    """codebook | version | run | codes"""
    codes: list[CodeEntry]
    units: dict[str, frozenset[str]] | None = None
    """unit key -> ids of the codes applied to it; None where the operand says nothing about units."""
    notes: list[str] = field(default_factory=list)

    def code_units(self) -> dict[str, set[str]]:
        """code id -> the unit keys it was applied to."""
        out: dict[str, set[str]] = defaultdict(set)
        for unit, codes in (self.units or {}).items():
            for c in codes:
                out[c].add(unit)
        return out


def from_codebook(codebook: Any, label: str, kind: str = "codebook") -> CodeSet:
    return CodeSet(label, kind, [CodeEntry(c.id, c.name, c.definition) for c in codebook.codes])


def read_code_table(path: Path, codes_column: str = "human_codes", text_column: str | None = None,
                    separator: str = ";", encoding: str | None = None) -> CodeSet:
    """A table with one row per unit and a column of ``separator``-separated free-text codes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from None
    text = decode_bytes(data, path=path, encoding=encoding).text
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    columns = reader.fieldnames or []
    for needed, option in ((codes_column, "--codes-column"), (text_column, "--text-column")):
        if needed is not None and needed not in columns:
            raise InputError(f"no column {needed!r}", path=path, field=option,
                             hint="columns: " + ", ".join(columns) if columns else "the file has no header")
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    units: dict[str, frozenset[str]] = {}
    empty = rows = 0
    try:
        for n, row in enumerate(reader, start=2):
            if None in row:  # more cells than the header names
                raise InputError(f"{len(row) - 1 + len(row[None])} cells where the header names {len(columns)}",
                                 path=path, line=reader.line_num)
            rows += 1
            cell = (row.get(codes_column) or "").strip()
            codes = set()
            for r in (x.strip() for x in cell.split(separator)) if cell else ():
                norm = normalise_code(r)
                if not norm:  # "a;;b", a trailing ";", a code of punctuation only
                    empty += 1
                    continue
                spellings[norm][r] += 1
                codes.add(norm)
            key = unit_key(row[text_column] or "") if text_column else f"row {n}"
            units[key] = units.get(key, frozenset()) | frozenset(codes)
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", path=path, line=reader.line_num) from None
    folded = {c: one for c in spellings if (one := singular(c)) != c and one in spellings}
    for plural, single in folded.items():  # "emotions" and "emotion": one code, as the other variants
        spellings[single].update(spellings.pop(plural))
    if folded:
        units = {k: frozenset(folded.get(c, c) for c in v) for k, v in units.items()}
    entries = [CodeEntry(code, spellings[code].most_common(1)[0][0], members=sum(spellings[code].values()))
               for code in sorted(spellings, key=lambda c: (-sum(spellings[c].values()), c))]
    notes = [f"{rows} rows, {len(entries)} distinct codes"]
    variants = sum(len(s) - 1 for s in spellings.values())
    if variants:
        notes.append(f"{variants} variant spellings (case, spaces, punctuation) folded into their codes")
    if folded:
        notes.append(f"{len(folded)} plural codes folded into their singular (e.g. {next(iter(folded))!r} into "
                     f"{next(iter(folded.values()))!r})")
    if empty:
        notes.append(f"{empty} empty codes left out")
    if not entries:
        raise InputError(f"no codes in column {codes_column!r}", path=path, field="--codes-column")
    return CodeSet(f"codes:{path.name} ({codes_column})", "codes", entries, units, notes)


def run_codeset(project: Any, run_ref: str, **induce_options: Any) -> CodeSet:
    """An inductive run's candidate codes grouped into codes; a unit is a document (its segments' codes joined)."""
    from ..candidates import list_candidates
    from ..runs.store import get_run
    from .induce import induce_codebook

    run = get_run(project.db, run_ref)
    found = [c for c in list_candidates(project.db, None) if c.run_id == run.id]
    if not found:
        raise InputError(f"run {run.id} ({run.coder}) proposed no codes",
                         hint="compare an inductive run: assistcode code --template inductive ...")
    induced = induce_codebook(found, **induce_options)
    return induced_codeset(project, run.id, induced, f"run:{run.id} ({run.coder})",
                           [f"{len(found)} proposals grouped into {len(induced)} codes"])


def induced_codeset(project: Any, run_id: int, induced: Any, label: str, notes: list[str]) -> CodeSet:
    """Induced codes as a comparison operand, units keyed by the text of the documents of run ``run_id``'s coded
    segments (a document with no code is a unit with an empty set)."""
    doc_text = dict(project.db.execute(
        "SELECT s.id, d.text FROM segments s JOIN documents d ON d.id = s.document_id WHERE s.id IN "
        "(SELECT segment_id FROM run_segments WHERE run_id = ? AND status = 'ok')", (run_id,)))
    units: dict[str, set[str]] = {unit_key(t): set() for t in doc_text.values()}
    for code in induced:
        for seg in code.segments:
            if seg in doc_text:
                units[unit_key(doc_text[seg])].add(code.id)
    entries = [CodeEntry(c.id, c.name, c.definition, members=len(c.members)) for c in induced]
    return CodeSet(label, "run", entries, {k: frozenset(v) for k, v in units.items()}, notes)


def load_operand(spec: str, project: Any = None, *, codes_column: str = "human_codes",
                 text_column: str | None = None, **induce_options: Any) -> CodeSet:
    """An operand of ``codebook compare`` by its spelling (see the module docstring)."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("version", "run") and project is None:
        raise InputError(f"{spec!r} names a project's {kind}: run it inside a project (or give --project)")
    if sep and kind == "version":
        cb = project.codebook(rest)
        return from_codebook(cb, f"version:{cb.hash[:12]} ({cb.name})", "version")
    if sep and kind == "run":
        return run_codeset(project, rest, **induce_options)
    if sep and kind == "codes":
        path = Path(rest)
        if not path.is_file():
            raise InputError(f"no file {rest!r}", field="codes:FILE")
        return read_code_table(path, codes_column, text_column)
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"{spec!r} names nothing", hint="a codebook file (.yaml, .csv, .qdc), version:HASH, run:N "
                                                          "or codes:FILE")
    from ..codebook import load_codebook

    cb = load_codebook(path)
    return from_codebook(cb, f"{path.name} ({cb.name})")

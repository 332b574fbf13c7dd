"""Which files a ``.qdpx`` may make assistcode read: its own members, or a regular text (``.txt``, ``.md``) or
Word (``.docx``) file under the sources folder (the archive's folder, or ``--sources DIR``) with no hidden component
(``.ssh``, ``.env``) in its path. Anything else a source names (a dotfile, a key, a database, a link out of the
folder, a pipe, a directory) is refused with one line naming the source: `code` would send its text to a model."""
from __future__ import annotations

import re
import stat
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import unquote

from ..errors import InputError
from .archive import SafeArchive

TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown"})
"""Types an external ``plainTextPath`` may name."""
DOCUMENT_SUFFIXES = frozenset({".docx"})
"""Types an external ``richTextPath`` may name."""
_HINT = "only text (.txt, .md) or .docx files under the sources folder are read; pass --sources DIR to name it"


def written_path(ref: str) -> PurePosixPath:
    """The path a ``file://`` reference (or a bare path, a Windows one included) names, as written."""
    target = unquote(ref[len("file://"):]) if ref.lower().startswith("file://") else ref
    target = target.replace("\\", "/")
    if re.match(r"^/?[A-Za-z]:/", target):  # C:/Users/... from a Windows exporter: absolute
        target = "/" + target.lstrip("/")[2:].lstrip("/")
    return PurePosixPath(target)


def _hidden(path: Path, folder: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def external_source(ref: str, folder: Path, suffixes: frozenset[str], where: str,
                    warn: Callable[[str], None]) -> Path:
    """The file an external source reference may be read from (``folder`` resolved), or an InputError naming the
    source. An absolute path outside ``folder`` (another machine's) is looked for by its name inside ``folder``."""
    written = written_path(ref)
    if written.is_absolute():
        candidate = Path(written)
        if not candidate.is_relative_to(folder):
            candidate = folder / written.name
            warn(f"external source {ref}: looked for as {written.name} in {folder} (sources are read only from there)")
    else:
        candidate = folder / written
    if ".." in written.parts or not candidate.is_relative_to(folder) or _hidden(candidate, folder):
        raise InputError(f"external source {ref} refused: a hidden or parent component in its path", path=where,
                         hint=_HINT)
    resolved = candidate.resolve()
    if not resolved.is_relative_to(folder) or _hidden(resolved, folder):
        raise InputError(f"external source {ref} refused: it leads outside {folder} or to a hidden file", path=where,
                         hint=_HINT)
    if candidate.suffix.lower() not in suffixes or resolved.suffix.lower() not in suffixes:
        raise InputError(f"external source {ref} refused: not a {', '.join(sorted(suffixes))} file", path=where,
                         hint=_HINT)
    try:
        mode = resolved.stat().st_mode
    except OSError:
        raise InputError(f"external source {ref} not found (looked in {folder})", path=where,
                         hint="put the source files beside the .qdpx, or pass --sources DIR") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"external source {ref} refused: not a regular file", path=where, hint=_HINT)
    return resolved


def source_bytes(z: SafeArchive, ref: str, folder: Path, where: str, warn: Callable[[str], None],
                 suffixes: frozenset[str] = TEXT_SUFFIXES) -> bytes:
    """A source's bytes: an ``internal://`` member, or an external file that :func:`external_source` allows, read
    no further than the archive's member limit."""
    if ref.startswith("internal://"):
        name = ref[len("internal://"):]
        member = z.find("sources/" + name) or z.find(name)
        if member is None:
            raise InputError(f"{ref} is not in the archive", path=where)
        return z.read(member)
    path = external_source(ref, folder, suffixes, where, warn)
    limit = z.limits.member_bytes
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"external source {path.name} is over the {limit:,} byte limit", path=where)
    return data

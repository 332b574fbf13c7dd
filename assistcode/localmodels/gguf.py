"""Reading a GGUF file's metadata header (no tensors, no llama.cpp): enough to refuse a file that is not GGUF or
not a chat model before loading a gigabyte."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import InputError

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def _read(fh: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = fh.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack(fmt, data)[0]


def _string(fh: BinaryIO) -> str:
    n = _read(fh, "<Q")
    if n > 1 << 26:
        raise ValueError("string too long")
    return fh.read(n).decode("utf-8", errors="replace")


def _value(fh: BinaryIO, kind: int, keep: bool) -> Any:
    if kind in _SCALARS:
        return _read(fh, _SCALARS[kind])
    if kind == _STRING:
        return _string(fh)
    if kind == _ARRAY:
        item, count = _read(fh, "<I"), _read(fh, "<Q")
        if item in _SCALARS and not keep:
            fh.seek(struct.calcsize(_SCALARS[item]) * count, 1)
            return None
        values = [_value(fh, item, keep) for _ in range(count)]
        return values if keep else None
    raise ValueError(f"unknown GGUF value type {kind}")


def read_metadata(path: Path, wanted: set[str] | None = None) -> dict[str, Any]:
    """Key -> value for the header's metadata (arrays skipped unless wanted)."""
    try:
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise InputError("not a GGUF file (no GGUF magic number)", path=path, hint="give a .gguf model file")
            version = _read(fh, "<I")
            if version < 2:
                raise InputError(f"GGUF version {version} is too old", path=path)
            _read(fh, "<Q")  # tensors
            count = _read(fh, "<Q")
            out: dict[str, Any] = {}
            for _ in range(count):
                key = _string(fh)
                kind = _read(fh, "<I")
                keep = wanted is None or key in wanted
                value = _value(fh, kind, keep)
                if keep:
                    out[key] = value
            return out
    except (EOFError, ValueError, struct.error) as exc:
        raise InputError(f"damaged GGUF header ({exc or 'ends early'})", path=path) from None


def write_metadata_only(path: Path, metadata: dict[str, str]) -> None:
    """A GGUF file holding string metadata and no tensors (for tests of the checks above)."""
    with path.open("wb") as fh:
        fh.write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(metadata)))
        for key, value in metadata.items():
            for text in (key, value):
                data = text.encode()
                if text is key:
                    fh.write(struct.pack("<Q", len(data)) + data + struct.pack("<I", _STRING))
                else:
                    fh.write(struct.pack("<Q", len(data)) + data)

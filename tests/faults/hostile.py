"""A generator of hostile files: what a careless exporter or an attacker might hand assistcode. Each function
writes one file (or returns its text) and is small enough to read as a description of the attack."""
from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

# ---- YAML ---------------------------------------------------------------------------------------------------------


def yaml_bomb(levels: int = 9, width: int = 9) -> str:
    """"Billion laughs" in YAML: each anchor holds ``width`` aliases of the one before, ``levels`` deep."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + f"\ncodes: *a{levels}\n"


def deep_yaml(depth: int = 20_000) -> str:
    """A flow sequence nested ``depth`` levels deep (PyYAML's composer recurses once per level)."""
    return "codes: " + "[" * depth + "]" * depth + "\n"


def recursive_yaml() -> str:
    """An anchor whose node contains an alias of itself."""
    return "codes: &c [*c]\n"


# ---- REFI-QDA archives --------------------------------------------------------------------------------------------
USER = "6B29FC40-CA47-1067-B31D-00DD010662DA"
CODE = "0A1B2C3D-0000-4000-8000-000000000001"
SOURCE_GUID = "11111111-1111-4111-8111-111111111111"


def qde(source_attrs: str = 'plainTextPath="internal://s.txt"', *, users: dict[str, str] | None = None) -> bytes:
    """A minimal valid ``project.qde`` whose one text source carries ``source_attrs``."""
    users_xml = "".join(f'<User guid="{g}" name="{n}"/>' for g, n in (users or {USER: "a"}).items())
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="p">
  <Users>{users_xml}</Users>
  <CodeBook><Codes><Code guid="{CODE}" name="c" isCodable="true"/></Codes></CodeBook>
  <Sources><TextSource guid="{SOURCE_GUID}" name="s" {source_attrs}/></Sources>
</Project>
""".encode()


def qdpx(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def qdpx_external(path: Path, ref: str, *, rich: bool = False) -> Path:
    """An archive whose one source is read from outside it: ``plainTextPath`` (or ``richTextPath``) = ``ref``."""
    attr = "richTextPath" if rich else "plainTextPath"
    return qdpx(path, {"project.qde": qde(f'{attr}="{ref}"')})


def _data_offset(raw: bytes, info: zipfile.ZipInfo) -> int:
    """Where a member's (compressed) data starts: after its local header, name and extra field."""
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len


def qdpx_damaged(path: Path, kind: str) -> Path:
    """A ``.qdpx`` whose source member is damaged: ``crc`` (a flipped byte in stored data: BadZipFile on reading),
    ``deflate`` (garbage in a deflate stream: zlib.error), or ``cut`` (the archive cut short: no central directory)."""
    text = b"Plain text of the source, long enough to be compressed well. " * 40
    compression = zipfile.ZIP_STORED if kind == "crc" else zipfile.ZIP_DEFLATED
    qdpx(path, {"project.qde": qde(), "sources/s.txt": text}, compression)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("sources/s.txt")
    at = _data_offset(bytes(raw), info)
    if kind == "crc":
        raw[at + 5] ^= 0xFF
    elif kind == "deflate":
        raw[at:at + 16] = b"\xff" * 16  # an invalid block type
    elif kind == "cut":
        raw = raw[: len(raw) // 2]
    else:
        raise ValueError(kind)
    path.write_bytes(bytes(raw))
    return path


# ---- tables -------------------------------------------------------------------------------------------------------


def ragged_csv(path: Path, sep: str = ",") -> Path:
    """Line 4 has one field more than the header."""
    rows = ["id,text", "1,fine", "2,also fine", "3,one,too many", "4,fine again"]
    path.write_text("\n".join(r.replace(",", sep) for r in rows) + "\n", encoding="utf-8")
    return path


def unterminated_quote_csv(path: Path) -> Path:
    """A quote opened on line 3 and never closed."""
    path.write_text('id,text\n1,fine\n2,"never closed\n3,fine\n', encoding="utf-8")
    return path


def bad_jsonl(path: Path) -> Path:
    """Line 3 is not JSON."""
    path.write_text('{"text": "a"}\n{"text": "b"}\n{"text": oops}\n{"text": "d"}\n', encoding="utf-8")
    return path


def jsonl_of_non_objects(path: Path) -> Path:
    """JSON Lines whose lines are arrays and numbers, not objects."""
    path.write_text('["text", "a"]\n[1, 2]\n3\n', encoding="utf-8")
    return path


def broken_parquet(path: Path) -> Path:
    """Parquet's magic bytes around garbage."""
    path.write_bytes(b"PAR1" + b"\x00garbage\x01" * 50 + b"PAR1")
    return path


# ---- model replies ------------------------------------------------------------------------------------------------


def deep_reply(depth: int = 100_000) -> str:
    """A JSON reply nested ``depth`` levels deep."""
    return '{"codes": ' + "[" * depth + "]" * depth + "}"


def html_page() -> str:
    """What a proxy or a captive portal answers with HTTP 200."""
    return "<!doctype html><html><head><title>Sign in</title></head><body><p>Please sign in.</p></body></html>"


def echoing_reply(secret: str, code: str) -> str:
    """A well-formed reply that echoes a secret in a rationale, an evidence quote and an unknown code's name."""
    return json.dumps({"codes": [
        {"code": code, "rationale": f"the key is {secret}", "evidence": f"quote {secret}", "confidence": 0.9},
        {"code": f"invented-{secret}", "rationale": "x", "evidence": "", "confidence": 0.5}]})


def ragged_codes_csv(path: Path) -> Path:
    """Human codes (long layout) whose line 3 has one field more than the header."""
    path.write_text("segment_id,coder,code\na,ann,x\nb,ann,y,extra\n", encoding="utf-8")
    return path


def unterminated_codes_csv(path: Path) -> Path:
    """Human codes with a quote opened on line 3 and never closed."""
    path.write_text('segment_id,coder,code\na,ann,x\nb,ann,"y\nc,ann,z\n', encoding="utf-8")
    return path


def damaged_docx(path: Path, good: Path) -> Path:
    """A copy of the Word file ``good`` whose document.xml holds a broken deflate stream (zlib.error on reading)."""
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("word/document.xml")
    at = _data_offset(bytes(raw), info)
    raw[at:at + 16] = b"\xff" * 16
    path.write_bytes(bytes(raw))
    return path

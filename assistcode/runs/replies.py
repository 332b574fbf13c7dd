"""Model replies: the JSON shape each template asks for, parsing, and validation against the codebook and the
segment (codes that exist, evidence quotes that really occur, confidences in [0, 1])."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..model import Segment


class ReplyError(Exception):
    """A reply that cannot be used at all (not JSON, wrong shape). The message is the failure reason."""


@dataclass
class Proposal:
    code: str
    rationale: str = ""
    evidence: str = ""
    evidence_start: int | None = None
    """Document offsets of the evidence quote, where it was found in the segment."""
    evidence_end: int | None = None
    evidence_found: bool = False
    confidence: float | None = None
    more_quotes: list[tuple[int, int]] = field(default_factory=list)
    """Document offsets of further located quotes for the same code (the ``span`` template asks for several)."""
    more_not_found: int = 0
    """Further quotes for the same code that could not be located (counted with the run's quotes not found)."""


@dataclass
class Validated:
    proposals: list[Proposal] = field(default_factory=list)
    unknown_codes: list[str] = field(default_factory=list)
    quotes_not_found: int = 0
    bad_confidence: int = 0
    reasoning: str | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)


def _code_item(code_ids: Sequence[str] | None) -> dict[str, Any]:
    code: dict[str, Any] = {"type": "string"}
    if code_ids:
        code["enum"] = list(code_ids)
    return {"type": "object", "additionalProperties": False, "required": ["code", "rationale", "evidence", "confidence"],
            "properties": {"code": code, "rationale": {"type": "string"}, "evidence": {"type": "string"},
                           "confidence": {"type": "number", "minimum": 0, "maximum": 1}}}


def reply_schema(output: str, code_ids: Sequence[str] | None = None, segment_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """The JSON schema of a reply (codes restricted to the codebook's ids), for structured output."""
    codes = {"type": "array", "items": _code_item(code_ids)}
    if output == "codes":
        return {"type": "object", "additionalProperties": False, "required": ["codes"], "properties": {"codes": codes}}
    if output == "cot":
        return {"type": "object", "additionalProperties": False, "required": ["reasoning", "codes"],
                "properties": {"reasoning": {"type": "string"}, "codes": codes}}
    if output == "batch":
        seg: dict[str, Any] = {"type": "string"}
        if segment_ids:
            seg["enum"] = list(segment_ids)
        item = {"type": "object", "additionalProperties": False, "required": ["segment_id", "codes"],
                "properties": {"segment_id": seg, "codes": codes}}
        return {"type": "object", "additionalProperties": False, "required": ["segments"],
                "properties": {"segments": {"type": "array", "items": item}}}
    if output == "inductive":
        cand = {"type": "object", "additionalProperties": False, "required": ["name", "definition", "evidence", "confidence"],
                "properties": {"name": {"type": "string"}, "definition": {"type": "string"},
                               "evidence": {"type": "string"}, "confidence": {"type": "number", "minimum": 0, "maximum": 1}}}
        return {"type": "object", "additionalProperties": False, "required": ["candidates"],
                "properties": {"candidates": {"type": "array", "items": cand}}}
    raise ValueError(f"unknown output kind {output!r}")


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


MAX_REPLY_CHARS = 4 * 1024 * 1024
"""The longest reply text parsed (any provider): a coding reply is a few kilobytes."""
MAX_DEPTH = 64
"""The deepest nesting of arrays and objects a reply may have (a reply needs four levels)."""


def _depth(body: str) -> int:
    """How deeply brackets nest in ``body``, outside strings (a linear scan: no recursion, whatever the input)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in body:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(text: str) -> dict[str, Any]:
    """The reply's JSON object (a Markdown code fence around it is tolerated). A reply over
    :data:`MAX_REPLY_CHARS`, or nested deeper than :data:`MAX_DEPTH`, is a ReplyError with that reason."""
    if text is None or not text.strip():
        raise ReplyError("empty reply")
    if len(text) > MAX_REPLY_CHARS:
        raise ReplyError(f"reply of {len(text):,} characters is over the cap of {MAX_REPLY_CHARS:,}: refused")
    m = _FENCE.match(text)
    body = m.group(1) if m else text.strip()
    if body.count("[") + body.count("{") > MAX_DEPTH and _depth(body) > MAX_DEPTH:  # counting is cheap
        raise ReplyError(f"reply nested more than {MAX_DEPTH} levels deep: refused")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ReplyError(f"reply is not JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:  # the depth check should stop this first
        raise ReplyError("reply nested too deeply: refused") from None
    if not isinstance(value, dict):
        raise ReplyError(f"reply is JSON but not an object (got {type(value).__name__})")
    return value


# -- evidence quotes ------------------------------------------------------------------------------------------------
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                         "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u00a0": " "})


def _normalise(text: str) -> tuple[str, list[int]]:
    """Case-folded text with straight quotes, one space for any whitespace run and "..." for an ellipsis; and for
    each character of the result, its index in ``text``."""
    out: list[str] = []
    index: list[int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            j = i
            while j < len(text) and text[j].isspace():
                j += 1
            if out and out[-1] != " ":
                out.append(" ")
                index.append(i)
            i = j
            continue
        if ch == "\u2026":
            out.extend("...")
            index.extend([i, i, i])
        else:
            for c in ch.translate(_QUOTES).casefold():
                out.append(c)
                index.append(i)
        i += 1
    return "".join(out), index


def locate(quote: str, text: str) -> tuple[int, int] | None:
    """Offsets of ``quote`` in ``text``: exactly, else after normalising whitespace, case, curly quotes and
    ellipses; a quote that elides text with an ellipsis matches its parts in order. ``None`` if not found."""
    quote = quote.strip().strip('"').strip()
    if not quote:
        return None
    at = text.find(quote)
    if at >= 0:
        return at, at + len(quote)
    norm_text, index = _normalise(text)
    norm_quote, _ = _normalise(quote)
    norm_quote = norm_quote.strip()
    parts = [p.strip() for p in re.split(r"\.{3,}", norm_quote) if p.strip()] or [norm_quote]
    start = end = None
    pos = 0
    for part in parts:
        hit = norm_text.find(part, pos)
        if hit < 0:
            return None
        if start is None:
            start = hit
        end = hit + len(part)
        pos = end
    assert start is not None and end is not None
    return index[start], index[end - 1] + 1


def _confidence(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if 0.0 <= value <= 1.0 else None


def validate_codes(items: Any, segment: Segment, code_ids: set[str]) -> Validated:
    """Turn a reply's ``codes`` list into proposals for ``segment``: unknown codes dropped (and counted), quotes
    located (or flagged not found, offsets empty), confidences outside [0, 1] dropped (and counted)."""
    if not isinstance(items, list):
        raise ReplyError("'codes' is not a list")
    v = Validated()
    seen: set[str] = set()
    for item in items:
        if isinstance(item, str):
            item = {"code": item}
        if not isinstance(item, dict) or not isinstance(item.get("code"), str):
            raise ReplyError("an entry of 'codes' has no 'code' string")
        code = item["code"].strip()
        if code not in code_ids:
            v.unknown_codes.append(code)
            continue
        evidence = str(item.get("evidence") or "")
        where = locate(evidence, segment.text) if evidence else None
        if code in seen:  # the same code again: one more quote for it (a span), never a second proposal
            first = next(p for p in v.proposals if p.code == code)
            if evidence and where is None:
                v.quotes_not_found += 1
                first.more_not_found += 1
            elif where is not None:
                first.more_quotes.append((segment.start + where[0], segment.start + where[1]))
            continue
        seen.add(code)
        if evidence and where is None:
            v.quotes_not_found += 1
        conf = _confidence(item.get("confidence"))
        if item.get("confidence") is not None and conf is None:
            v.bad_confidence += 1
        v.proposals.append(Proposal(
            code, str(item.get("rationale") or ""), evidence,
            segment.start + where[0] if where else None, segment.start + where[1] if where else None,
            where is not None, conf))
    return v


def validate_reply(data: dict[str, Any], output: str, segments: Sequence[Segment], code_ids: set[str],
                   labels: Sequence[str] | None = None) -> dict[str, Validated]:
    """segment id -> validated proposals. For a batch, segments the reply leaves out are missing from the result;
    ``labels`` are the names the prompt gave the segments (short numbers save tokens), in order."""
    if output in ("codes", "cot"):
        if "codes" not in data:
            raise ReplyError("reply has no 'codes' list")
        v = validate_codes(data["codes"], segments[0], code_ids)
        if output == "cot":
            v.reasoning = str(data.get("reasoning") or "")
        return {segments[0].id: v}
    if output == "batch":
        entries = data.get("segments")
        if not isinstance(entries, list):
            raise ReplyError("reply has no 'segments' list")
        by_label = dict(zip(labels or [s.id for s in segments], segments))
        out: dict[str, Validated] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                raise ReplyError("an entry of 'segments' is not an object")
            seg = by_label.get(str(entry.get("segment_id", "")).strip())
            if seg is not None and seg.id not in out:
                out[seg.id] = validate_codes(entry.get("codes", []), seg, code_ids)
        return out
    if output == "inductive":
        cands = data.get("candidates")
        if not isinstance(cands, list):
            raise ReplyError("reply has no 'candidates' list")
        v = Validated()
        for c in cands:
            if isinstance(c, dict) and str(c.get("name", "")).strip():
                where = locate(str(c.get("evidence") or ""), segments[0].text) if c.get("evidence") else None
                v.candidates.append({"name": str(c["name"]).strip(), "definition": str(c.get("definition") or ""),
                                     "evidence": str(c.get("evidence") or ""), "evidence_found": where is not None,
                                     "confidence": _confidence(c.get("confidence"))})
        return {segments[0].id: v}
    raise ReplyError(f"unknown output kind {output!r}")

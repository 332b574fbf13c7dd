"""Batch API files: the request lines a run sends (split at the API's limits) and the result lines it reads back.

Pure functions over plain data; the transport is in :mod:`assistcode.runs.batch`, the store in
:mod:`assistcode.runs.batch_store`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from ..ids import canonical_json, sha256_text

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
MAX_REQUESTS = 50_000
"""Requests per input file the Batch API takes (OpenAI's documented limit)."""
MAX_BYTES = 200 * 1024 * 1024
"""Bytes per input file the Batch API takes (OpenAI's documented limit: 200 MB)."""


def request_body(provider: Any, messages: list[dict[str, str]], options: Any) -> dict[str, Any]:
    """The JSON body the ``openai`` provider would POST for this call (its ``extra_body`` merged in, as the SDK does)."""
    req = dict(provider._request(messages, options, provider.mode))
    extra = req.pop("extra_body", None) or {}
    return {**req, **extra}


def score_body(provider: Any, messages: list[dict[str, str]], options: Any) -> dict[str, Any]:
    """The JSON body the ``openai`` provider's ``score`` POSTs for one question of a scoring template."""
    return provider._score_request(messages, options)


def custom_id(body: dict[str, Any]) -> str:
    """A request's name in the Batch API: a hash of its body, so one request asked twice is sent once. Deterministic
    and distinct per segment, sample and question: a scoring template's questions differ by their code (or
    options), a sample by its seed; segments of the same text share the one request and its reply."""
    return "ac-" + sha256_text(canonical_json(body))[:40]


def request_line(cid: str, body: dict[str, Any]) -> bytes:
    return (json.dumps({"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": body}, ensure_ascii=False,
                       separators=(",", ":")) + "\n").encode("utf-8")


def split_files(lines: Iterable[tuple[str, int]], max_requests: int = MAX_REQUESTS,
                max_bytes: int = MAX_BYTES) -> Iterator[list[tuple[str, int]]]:
    """Request lines (``(custom_id, bytes)``) grouped into files of at most ``max_requests`` lines and ``max_bytes``
    bytes, in order. A single line over ``max_bytes`` is a :class:`ValueError` naming its request (no file could
    carry it)."""
    if max_requests < 1 or max_bytes < 1:
        raise ValueError("batch file limits must be 1 or more")
    chunk: list[tuple[str, int]] = []
    size = 0
    for cid, length in lines:
        if length > max_bytes:
            raise ValueError(f"request {cid} is {length:,} bytes, more than a batch file may hold ({max_bytes:,})")
        if chunk and (len(chunk) >= max_requests or size + length > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append((cid, length))
        size += length
    if chunk:
        yield chunk


TRANSIENT_CODES = {"batch_expired", "batch_cancelled", "rate_limit_exceeded", "server_error", "timeout"}


@dataclass
class Outcome:
    """What a batch's files said about one request."""

    reply: dict[str, Any] | None = None
    """The chat completion, when it has one."""
    error: str | None = None
    transient: bool = True
    """Worth sending again (a server error, a rate limit, an expired or cancelled batch); False: refused for good."""


@dataclass
class Ingested:
    """A finished batch's files, read: an outcome per request of the batch, and what was skipped."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    malformed_lines: list[str] = field(default_factory=list)
    """``file line N: why`` for each line that is not a result line."""
    unknown_ids: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    """Results for a request already answered (in this file, or stored before)."""


def read_results(text_lines: Iterable[tuple[str, int, str]], expected: set[str], known: set[str],
                 take: Callable[[str, Outcome], None] | None = None) -> Ingested:
    """Read output and error file lines (``(file, line number, text)``). ``expected``: the requests this batch holds
    that have no reply yet; ``known``: every request of the run. A line naming no known request, a second result for
    a request, and a line that is not a result are each counted, never taken. Each outcome taken is handed to
    ``take`` as it is read (memory stays one line's), else kept in ``outcomes``."""
    got = Ingested()
    taken: set[str] = set()
    for name, number, text in text_lines:
        if not text.strip():
            continue
        where = f"{name} line {number}"
        try:
            item = json.loads(text)
            cid = item["custom_id"]
            if not isinstance(cid, str):
                raise TypeError("custom_id is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            got.malformed_lines.append(f"{where}: not a result line ({type(exc).__name__}: {str(exc)[:80]})")
            continue
        if cid not in known:
            got.unknown_ids.append(f"{where}: {cid[:60]}")
            continue
        if cid not in expected or cid in taken:
            got.duplicates.append(f"{where}: {cid}")
            continue
        taken.add(cid)
        if take is not None:
            take(cid, _outcome(item))
        else:
            got.outcomes[cid] = _outcome(item)
    return got


def _outcome(item: dict[str, Any]) -> Outcome:
    response = item.get("response") if isinstance(item.get("response"), dict) else None
    error = item.get("error") if isinstance(item.get("error"), dict) else None
    if response is not None:
        status = response.get("status_code")
        body = response.get("body")
        if status == 200 and isinstance(body, dict) and isinstance(body.get("choices"), list):
            return Outcome(reply=body)
        if status == 200:
            return Outcome(error="the result is not a chat completion")
        message = ((body or {}).get("error") or {}).get("message") if isinstance(body, dict) else None
        transient = not isinstance(status, int) or status >= 500 or status in (408, 409, 429)
        return Outcome(error=f"request refused ({status}): {message or 'no message'}", transient=transient)
    if error is not None:
        code = str(error.get("code") or "")
        return Outcome(error=f"{code or 'error'}: {error.get('message') or 'no message'}",
                       transient=code in TRANSIENT_CODES or not code)
    return Outcome(error="a result line with neither response nor error")


def batch_errors(batch: Any) -> str:
    """A rejected batch's reasons, one line (the API's validation errors, with their line numbers)."""
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) or []
    parts = []
    for e in data[:5]:
        line = getattr(e, "line", None)
        parts.append(f"{getattr(e, 'code', None) or 'error'}{f' (line {line})' if line else ''}: {getattr(e, 'message', '')}")
    more = f" (and {len(data) - 5} more)" if len(data) > 5 else ""
    return "; ".join(parts) + more if parts else "no reason given"

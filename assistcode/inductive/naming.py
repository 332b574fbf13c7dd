"""Names and definitions written by the model from each group's members, as a researcher names a category after
reading what it gathers. One call per group of two or more proposals (a single proposal keeps its own name); replies
are kept in the project's cache, keyed by the provider, model and prompt, so a repeated or resumed ``induce`` pays
nothing twice. A reply that is not usable leaves the group its most central member's name, counted.
"""
from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jinja2.sandbox

from ..ids import canonical_json, sha256_text
from .induce import InducedCode

VERSION = 1
SYSTEM = """You are a qualitative researcher building a codebook by constant comparison. Open codes proposed
separately for different passages were grouped because they mean much the same. Write the one code that gathers
them: a short name (one to four words) in the researchers' plain words, and a one-sentence definition another
researcher could apply.
Reply with JSON only: {"name": "<code name>", "definition": "<what it covers>"}"""
USER = """Proposed codes, with a quote each was given for:
{% for m in members %}
- {{ m.name }}{% if m.definition %}: {{ m.definition }}{% endif %}{% if m.evidence %} ("{{ m.evidence }}"){% endif %}

{% endfor %}"""
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["name", "definition"],
          "properties": {"name": {"type": "string", "maxLength": 60}, "definition": {"type": "string", "maxLength": 300}}}
MAX_MEMBERS = 12
"""Members shown per group (the most frequent names first): enough to name it, a bounded prompt."""
_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, trim_blocks=True,
                                                    lstrip_blocks=True, autoescape=False)


@dataclass
class NamingReport:
    groups_named: int = 0
    calls: int = 0
    cache_hits: int = 0
    unusable: int = 0
    """Replies with no usable name: the group keeps its central member's name."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_seconds: float = 0.0
    """Tokens and seconds of the calls behind every group named, cached or not: what the naming costs."""
    seconds: float = 0.0
    """This session's wall time."""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"prompt": f"induce-name@{VERSION}", "groups_named": self.groups_named, "calls": self.calls,
                "cache_hits": self.cache_hits, "unusable": self.unusable, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "model_seconds": round(self.model_seconds, 3),
                "seconds": round(self.seconds, 3)}


def naming_messages(code: InducedCode) -> list[dict[str, str]]:
    """The prompt for one group: its distinct member names (most frequent first), each with a definition and quote."""
    seen: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for m in code.members:
        key = m.name.strip().casefold()
        counts[key] = counts.get(key, 0) + 1
        seen.setdefault(key, m)
    order = sorted(seen, key=lambda k: (-counts[k], k))[:MAX_MEMBERS]
    members = [{"name": seen[k].name.strip(), "definition": (seen[k].definition or "").strip()[:200],
                "evidence": (seen[k].evidence or "").strip()[:160]} for k in order]
    return [{"role": "system", "content": SYSTEM + "\n"},
            {"role": "user", "content": _ENV.from_string(USER).render(members=members).strip() + "\n"}]


class Namer:
    """Names groups with one provider; replies cached in ``cache_file`` (JSON, written after every call)."""

    def __init__(self, provider: Any, model: str, cache_file: Path | None = None, max_tokens: int = 120) -> None:
        self.provider, self.model, self.cache_file, self.max_tokens = provider, model, cache_file, max_tokens
        self.cache: dict[str, dict[str, Any]] = {}
        if cache_file is not None and cache_file.exists():
            try:
                self.cache = json.loads(cache_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.cache = {}  # a damaged cache costs calls, never a wrong name

    def _key(self, messages: list[dict[str, str]]) -> str:
        described = getattr(self.provider, "describe", lambda: {})() or {}
        return sha256_text(canonical_json({"provider": described.get("provider", type(self.provider).__name__),
                                           "model": self.model, "max_tokens": self.max_tokens,
                                           "messages": messages}))

    def _save(self) -> None:
        if self.cache_file is None:
            return
        tmp = self.cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.cache), encoding="utf-8")
        os.replace(tmp, self.cache_file)

    def name(self, codes: Sequence[InducedCode], min_members: int = 2, taken: Sequence[str] = ()) -> NamingReport:
        """Rename, in place, every code gathering ``min_members`` proposals or more; ids follow the new names,
        unique among themselves and apart from ``taken`` (the ids of codes kept from an earlier round)."""
        return asyncio.run(self._name(codes, min_members, taken))

    async def _name(self, codes: Sequence[InducedCode], min_members: int, taken: Sequence[str]) -> NamingReport:
        import time

        from ..candidates import slug
        from ..providers.base import CallOptions
        from ..runs.replies import ReplyError, parse_json

        report = NamingReport()
        start = time.perf_counter()
        options = CallOptions(schema=SCHEMA, temperature=0.0, max_tokens=self.max_tokens)
        try:
            for code in codes:
                if len(code.members) < min_members:
                    continue
                messages = naming_messages(code)
                key = self._key(messages)
                hit = self.cache.get(key)
                if hit is None:
                    t0 = time.perf_counter()
                    reply = await self.provider.complete(messages, options)
                    hit = {"text": reply.text, "prompt_tokens": reply.prompt_tokens,
                           "completion_tokens": reply.completion_tokens, "seconds": time.perf_counter() - t0}
                    self.cache[key] = hit
                    self._save()
                    report.calls += 1
                else:
                    report.cache_hits += 1
                report.prompt_tokens += hit.get("prompt_tokens", 0)
                report.completion_tokens += hit.get("completion_tokens", 0)
                report.model_seconds += hit.get("seconds", 0.0)
                try:
                    data = parse_json(hit["text"])
                    name = " ".join(str(data.get("name") or "").split())
                    definition = " ".join(str(data.get("definition") or "").split())
                except ReplyError:
                    name = definition = ""
                if not name or not slug(name).strip("-") or slug(name) == "code":
                    report.unusable += 1
                    continue
                code.name, code.definition = name[:60], definition[:300]
                report.groups_named += 1
        finally:
            close = getattr(self.provider, "aclose", None)
            if close is not None:
                await close()
        unique_ids(codes, taken)
        report.seconds = time.perf_counter() - start
        if report.unusable:
            report.notes.append(f"{report.unusable} groups kept their central member's name (the model's reply "
                                "had no usable name)")
        return report


def unique_ids(codes: Sequence[InducedCode], taken: Sequence[str] = ()) -> None:
    """Ids become slugs of the names, made unique in order and apart from ``taken``."""
    from ..candidates import slug

    used = set(taken)
    for c in codes:
        base = slug(c.name)
        code_id, n = base, 1
        while code_id in used:
            n += 1
            code_id = f"{base}-{n}"
        used.add(code_id)
        c.id = code_id

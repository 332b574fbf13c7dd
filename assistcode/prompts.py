"""Prompt templates: versioned YAML files (``prompts/``) rendered with Jinja2, where a missing variable is an error.

Every template puts the codebook first, as a prefix that is byte-identical across calls (so servers can reuse their
prompt cache), and the segment or segments last. Each rendered prompt is hashed; the hash is part of the cache key
and of every proposal's provenance.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Sequence

import jinja2
import jinja2.meta
import jinja2.sandbox
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import safeyaml
from .errors import InputError, from_validation
from .ids import canonical_json, sha256_text
from .model import Codebook
from .resources import resource_dir

Output = Literal["codes", "batch", "cot", "inductive", "per-code", "choice"]
SCORING_OUTPUTS = ("per-code", "choice")
"""Scoring templates: the answer is read from the first token's log-probabilities, not generated as JSON."""


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class TemplateSpec(BaseModel):
    """A prompt template file."""

    model_config = ConfigDict(extra="forbid")
    name: str
    """Used on the command line (``--template``) and in every proposal's provenance."""
    version: int = Field(ge=1)
    """Bumped whenever the wording changes; copied into every result."""
    description: str
    output: Output = "codes"
    """The reply shape: codes for one segment, codes for a batch, reasoning then codes, or candidate codes; or a
    score: ``per-code`` (one yes/no question per code, variable ``code``), ``choice`` (one question, the codes as
    lettered ``options``)."""
    messages: list[Message] = Field(min_length=1)


# A project's template is someone else's file: rendered in jinja2's immutable sandbox, it can read the context it is
# given and nothing else (no attributes like __class__, no calls that change lists or dicts).
_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False,
                          trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class RenderedPrompt:
    messages: tuple[dict[str, str], ...]

    @cached_property
    def hash(self) -> str:
        return sha256_text(canonical_json(list(self.messages)))

    @property
    def text(self) -> str:
        return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in self.messages)


_PER_CALL = frozenset({"segment", "segments", "code", "options", "context"})


@dataclass(frozen=True)
class Template:
    spec: TemplateSpec
    source: str
    """The file's text: its hash identifies this exact template."""
    path: Path | None = None
    shadows: Path | None = None
    """The shipped template of the same name that this project template hides, if it does."""
    _prefix_cache: dict[tuple, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> int:
        return self.spec.version

    @property
    def output(self) -> Output:
        return self.spec.output

    @cached_property
    def hash(self) -> str:
        return sha256_text(self.source)

    @cached_property
    def _compiled(self) -> list[tuple[str, jinja2.Template, frozenset[str]]]:
        try:
            out = []
            for m in self.spec.messages:
                names = frozenset(jinja2.meta.find_undeclared_variables(_ENV.parse(m.content)))
                out.append((m.role, _ENV.from_string(m.content), names))
            return out
        except jinja2.TemplateSyntaxError as exc:
            raise InputError(f"template syntax error: {exc.message}", path=self.path, line=exc.lineno) from exc

    def render(self, **context: Any) -> RenderedPrompt:
        """Render every message; a variable the template uses but the context lacks is an error. A message that
        uses no per-segment variable (the codebook prefix) is rendered once per context and reused."""
        try:
            messages = []
            for i, (role, t, names) in enumerate(self._compiled):
                if names & _PER_CALL:
                    content = t.render(**context)
                else:
                    key = (i, id(context.get("codes")), id(context.get("examples")), context.get("codebook_name"))
                    content = self._prefix_cache.get(key)
                    if content is None:
                        content = self._prefix_cache[key] = t.render(**context)
                messages.append({"role": role, "content": content.strip() + "\n"})
            return RenderedPrompt(tuple(messages))
        except jinja2.UndefinedError as exc:
            raise InputError(f"template {self.name!r} needs a variable the context lacks: {exc.message}",
                             path=self.path, hint="see `assistcode prompts show NAME` for its variables") from exc
        except jinja2.exceptions.SecurityError as exc:
            raise InputError(f"template {self.name!r} reaches outside what a template may use: {exc}", path=self.path,
                             hint="templates are rendered in a sandbox; use the variables given to them") from None
        except (jinja2.TemplateError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError) as exc:
            raise InputError(f"template {self.name!r} failed to render: {type(exc).__name__}: {exc}",
                             path=self.path) from None

    @property
    def shadowing(self) -> str | None:
        """One line saying which file this name resolved to, when a project template hides a shipped one."""
        if self.shadows is None:
            return None
        return (f"template {self.name!r} is the project's {self.path}, not the shipped {self.shadows.name} "
                "(rename it to use both)")


def codebook_context(codebook: Codebook) -> list[dict[str, Any]]:
    """The codebook as templates see it."""
    return [c.as_dict() for c in codebook.codes]


def load_template(path: str | Path) -> Template:
    path = Path(path)
    data, text = safeyaml.load_file(path)
    try:
        spec = TemplateSpec.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, path) from exc
    return Template(spec, text, path)


def template_dirs(project_dir: Path | None = None) -> list[Path]:
    """Where templates are looked up: a project's own ``prompts/`` first, then the shipped ones."""
    dirs = []
    if project_dir is not None and (project_dir / "prompts").is_dir():
        dirs.append(project_dir / "prompts")
    dirs.append(resource_dir("prompts"))
    return dirs


def list_templates(project_dir: Path | None = None) -> list[Template]:
    """Every template by name; a project's own hides a shipped one of the same name (and says so: ``shadows``)."""
    seen: dict[str, Template] = {}
    shipped = resource_dir("prompts")
    for d in template_dirs(project_dir):
        for path in sorted(d.glob("*.yaml")):
            t = load_template(path)
            if t.name not in seen:
                seen[t.name] = t
            elif d == shipped and seen[t.name].path is not None and seen[t.name].shadows is None:
                seen[t.name] = replace(seen[t.name], shadows=path)
    return list(seen.values())


def get_template(name: str, project_dir: Path | None = None) -> Template:
    """A template by name, or by path to a YAML file."""
    if name.endswith((".yaml", ".yml")) and Path(name).exists():
        return load_template(name)
    for t in list_templates(project_dir):
        if t.name == name:
            return t
    raise InputError(f"no prompt template named {name!r}", field="--template",
                     hint="available: " + ", ".join(t.name for t in list_templates(project_dir)))


def choose_examples(candidates: Sequence[tuple[str, str, Sequence[str]]], k: int) -> list[dict[str, Any]]:
    """Few-shot examples from (segment id, text, codes) candidates, in their given order: first one for each code
    not yet shown, then one with no code; a fixed choice, so the prompt prefix stays byte-identical."""
    chosen: list[tuple[str, str, Sequence[str]]] = []
    covered: set[str] = set()
    for seg, text, codes in candidates:
        if len(chosen) >= k:
            break
        if codes and not set(codes) <= covered:
            chosen.append((seg, text, codes))
            covered |= set(codes)
    for seg, text, codes in candidates:
        if len(chosen) >= k:
            break
        if not codes:
            chosen.append((seg, text, codes))
            break
    return [{"segment_id": seg, "text": text, "codes": list(codes)} for seg, text, codes in chosen]


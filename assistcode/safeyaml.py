"""Reading YAML that may be hostile: every YAML file assistcode reads (codebooks, prompt templates, suites, gold
standard manifests) goes through :func:`load`.

PyYAML's safe loader builds no objects, but it still expands aliases: nine nested levels of nine aliases (a "YAML
bomb") turn a kilobyte into hundreds of millions of nodes once anything walks the result, and a few thousand
nested brackets end in a RecursionError. :class:`SafeLoader` checks the composed node graph before anything is
constructed: nesting deeper than :data:`MAX_DEPTH` (aliases followed), more than :data:`MAX_EXPANSION` nodes added
by alias expansion, or an alias that contains itself, are refused with one line naming the file and line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import InputError

MAX_DEPTH = 100
"""Deepest nesting of mappings and sequences, aliases followed (a codebook's tree of codes is far shallower)."""
MAX_EXPANSION = 10_000
"""Most nodes that alias expansion may add beyond the nodes written in the file."""


class YamlLimitError(yaml.YAMLError):
    """A YAML document over one of the limits; ``line`` is 1-based where known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with bounded nesting and bounded alias expansion."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep: refused", mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            _check_expansion(node)
        return node


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose expanded tree is too deep, too much larger than the graph, or cyclic."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, expanded height)
    on_path: set[int] = set()

    def walk(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            size, height = sizes[key]
            if depth + height > MAX_DEPTH:
                raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep once aliases are expanded: refused",
                                     node.start_mark.line + 1)
            return size, height
        if key in on_path:
            raise YamlLimitError("an alias refers to a node that contains it (a recursive alias): refused",
                                 node.start_mark.line + 1)
        if depth > MAX_DEPTH:
            raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep once aliases are expanded: refused",
                                 node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = (1, 0)
            return 1, 0
        on_path.add(key)
        items = [x for pair in node.value for x in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
        size, height = 1, 0
        for item in items:
            s, h = walk(item, depth + 1)
            size, height = size + s, max(height, h + 1)
        on_path.discard(key)
        sizes[key] = (size, height)
        return size, height

    total, _ = walk(root, 0)
    added = total - len(sizes)
    if added > MAX_EXPANSION:
        raise YamlLimitError(f"aliases expand to {added:,} more nodes than the file holds (over {MAX_EXPANSION:,}; "
                             "a YAML bomb?): refused", 1)


def load(text: str, path: str | Path | None = None, *, loader: type[SafeLoader] = SafeLoader,
         error: type[InputError] = InputError) -> Any:
    """Parse one YAML document with :class:`SafeLoader` (or a subclass); any YAML problem, limits included,
    becomes one ``error`` naming ``path`` and the line."""
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except YamlLimitError as exc:
        raise error(exc.message, path=path, line=exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"not valid YAML: {problem}", path=path, line=mark.line + 1 if mark else None) from None
    except RecursionError:  # belt and braces: the depth limit should stop this first
        raise error(f"nested too deeply: refused (at most {MAX_DEPTH} levels)", path=path) from None


def load_file(path: str | Path, *, loader: type[SafeLoader] = SafeLoader,
              error: type[InputError] = InputError) -> tuple[Any, str]:
    """Read (UTF-8) and parse a YAML file: the data and the file's text."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read: {exc.strerror if isinstance(exc, OSError) else exc}", path=path) from None
    return load(text, path, loader=loader, error=error), text

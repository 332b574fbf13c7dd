"""The house (issue 14, items 14 and 15): the seams a maintainer relies on, checked so that a regression fails.

Provider choice lives in the registry (no provider names compared in the CLI or the engine); the CLI runs no SQL;
no private name crosses a module; the packages import each other in one direction; a misspelt provider, through the
real entry point, lists every registered provider; one memory of an endpoint's structured-output mode."""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

from assistcode.providers import base as providers
from assistcode.runs.engine import RunConfig

PACKAGE = Path(__file__).resolve().parents[1] / "assistcode"
SQL = re.compile(r"^\s*(SELECT\b.*\bFROM\b|INSERT\s+(OR\s+\w+\s+)?INTO\b|REPLACE\s+INTO\b|UPDATE\s+\w+\s+SET\b|"
                 r"DELETE\s+FROM\b|(CREATE|DROP)\s+(TABLE|INDEX|VIEW|TRIGGER)\b|ALTER\s+TABLE\b|PRAGMA\s+\w+)",
                 re.IGNORECASE | re.DOTALL)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# -- item 14: provider choice lives in the registry ----------------------------------------------------------------
def provider_literals(tree: ast.AST, names: set[str]) -> list[str]:
    """Where ``tree`` compares something with a provider's name, or keeps provider names in a collection."""
    found = []

    def named(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in names

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(named(n) for n in [node.left, *node.comparators]):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, (ast.Set, ast.Tuple, ast.List)) and any(named(n) for n in node.elts):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Dict) and any(k is not None and named(k) for k in node.keys):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("module", ["cli/run_cmds.py", "runs/engine.py", "runs/pricing.py"])
def test_the_cli_and_the_engine_compare_no_provider_name(module):
    names = {n.lower() for n in providers.available()}
    assert {"openai", "local", "langchain", "mock", "similarity", "trained"} <= names
    assert provider_literals(_tree(PACKAGE / module), names) == []


def test_the_provider_literal_check_catches_a_comparison():
    names = {"openai", "local"}
    caught = provider_literals(ast.parse('if c.provider == "OpenAI":\n    pass\nX = {"local", "x"}\n'), names)
    assert len(caught) == 2 and "line 1" in caught[0] and "line 3" in caught[1]
    assert provider_literals(ast.parse('default = "local"\nhelp = "local | openai"\n'), names) == []


def test_every_provider_is_registered_once_and_says_what_it_is():
    names = providers.available()
    assert names == sorted(set(names))
    for name in names:
        factory = providers.factory_of(name)
        assert callable(factory), name
    assert providers.is_whole_run("similarity") and providers.is_whole_run("trained")
    assert not any(providers.is_whole_run(n) for n in ("openai", "local", "langchain", "mock"))
    for name in ("similarity", "trained"):
        factory = providers.factory_of(name)
        assert callable(factory.run) and callable(factory.summary)
    assert providers.trait("local", "default_model") and providers.trait("openai", "default_model") is None
    assert providers.trait("openai", "own_deadline") and providers.trait("local", "own_deadline")
    assert not providers.trait("langchain", "own_deadline", False)
    assert providers.canonical("SIMILARITY") == "similarity" and providers.canonical(" Trained ") == "trained"


def test_a_provider_says_whether_it_costs_nothing():
    from assistcode.runs.pricing import Price, price_for

    for name in ("local", "mock", "similarity", "trained"):
        assert price_for(name, "any-model") == Price(0.0, 0.0), name
    assert price_for("openai", "gpt-4o-mini") == Price(0.15, 0.60)
    assert price_for("openai", "a-model-nobody-prices") is None  # unknown, never taken for free
    assert price_for("langchain", "a-model-nobody-prices") is None


def test_a_whole_run_provider_is_not_built_per_call():
    with pytest.raises(Exception, match="scores a whole run"):
        providers.get_provider("similarity", "any")


def test_each_provider_settles_its_own_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    remote = "https://models.example.org/v1"
    openai = RunConfig(provider="openai", model="m", local_only=True)
    providers.settle(openai)  # --local-only with no endpoint: the one a call would reach, so the check refuses it
    assert openai.base_url == "https://api.openai.com/v1"
    chain = RunConfig(provider="langchain", model="m", base_url=remote, provider_options={"chat_model": "x:Y"})
    providers.settle(chain)  # a chat model's endpoint is one of its options
    assert chain.base_url is None and chain.provider_options == {"chat_model": "x:Y", "base_url": remote}
    local = RunConfig(provider="local", model="m", base_url=remote)
    providers.settle(local)  # in process: an endpoint is not its
    assert local.base_url is None
    with pytest.raises(Exception, match="--train-with"):
        providers.settle(RunConfig(provider="trained", model=""))


def test_each_provider_builds_its_own_options():
    config = RunConfig(provider="openai", model="m", base_url="http://127.0.0.1:1/v1", api_key="sk-test", timeout=7.0,
                       local_only=True, provider_options={"mode": "tools"})
    memory = object()
    options = providers.options_from(config, memory)  # type: ignore[arg-type]
    assert options == {"mode": "tools", "base_url": "http://127.0.0.1:1/v1", "api_key": "sk-test", "timeout": 7.0,
                       "local_only": True, "modes": memory}
    chain = providers.options_from(RunConfig(provider="langchain", model="m", provider_options={"chat_model": "a:B"}))
    assert chain == {"chat_model": "a:B", "local_only": False}
    mock = providers.options_from(RunConfig(provider="mock", model="m", api_key="k", provider_options={"latency": 0}))
    assert mock == {"latency": 0, "api_key": "k"}
    with pytest.raises(Exception, match="local-only"):  # langchain's own refusal, asked of it by the engine
        providers.check(RunConfig(provider="langchain", model="m", local_only=True, provider_options={"chat_model": "a:B"}))


class _Memory:
    def __init__(self) -> None:
        self.modes: dict[tuple[str, str], str] = {}

    def get(self, endpoint: str, model: str) -> str | None:
        return self.modes.get((endpoint, model))

    def remember(self, endpoint: str, model: str, mode: str) -> None:
        self.modes[(endpoint, model)] = mode


def test_one_memory_of_an_endpoints_structured_output_mode():
    from .conftest import need

    need("openai")
    from assistcode.providers import openai_compat

    url = "http://127.0.0.1:9/v1"
    memory = _Memory()
    first = openai_compat.OpenAIProvider(model="m", base_url=url, modes=memory)
    assert first.mode == "json_schema" and first._downgrade("json_schema")
    assert memory.modes == {(url, "m"): "json_object"}
    assert openai_compat.OpenAIProvider(model="m", base_url=url, modes=memory).mode == "json_object"
    # no second memory in the process: without the store's, a provider starts from the best mode again
    assert openai_compat.OpenAIProvider(model="m", base_url=url).mode == "json_schema"
    assert not [n for n, v in vars(openai_compat).items() if isinstance(v, dict) and "mode" in n.lower()]


def test_the_engine_hands_the_store_memory_to_the_provider(tmp_path):
    from .conftest import need

    need("openai")
    from assistcode.runs import store as rs

    from .runs.conftest import make_project

    project = make_project(tmp_path)
    try:
        memory = rs.EndpointModes(project.db)
        memory.remember("http://127.0.0.1:9/v1", "m", "tools")
        assert memory.get("http://127.0.0.1:9/v1", "m") == "tools"
        assert rs.endpoint_mode(project.db, "http://127.0.0.1:9/v1", "m") == "tools"
        from assistcode.runs.engine import Engine

        engine = Engine(project.db, project.codebook(), RunConfig(provider="openai", model="m",
                                                                  base_url="http://127.0.0.1:9/v1"))
        assert engine.provider.mode == "tools"  # read from the store, the one memory
    finally:
        project.close()


# -- the CLI, through its real entry point ---------------------------------------------------------------------
def test_a_misspelt_provider_lists_every_registered_provider(run, tmp_path):
    proj = tmp_path / "proj"
    r = run("code", "--provider", "simlarity", "--project", proj)
    assert r.code == 2 and "unknown provider 'simlarity'" in r.err and "--model" not in r.err
    listed = re.search(r"available: ([^)\n]*)", r.err).group(1)
    assert [n.strip(" .") for n in listed.split(",")] == providers.available()
    assert "similarity" in listed and "trained" in listed
    assert not proj.exists()


def test_a_whole_run_provider_in_capitals_is_found_and_asks_for_its_own_options(run, tmp_path):
    r = run("code", "--provider", "TRAINED", "--project", tmp_path / "proj")
    assert r.code == 2 and "--train-with" in r.err and "unknown provider" not in r.err


# -- item 15: one owner per table; no private names across modules --------------------------------------------------
def sql_in(tree: ast.AST) -> list[str]:
    """Calls to ``execute``-like methods and SQL statements written out."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "execute", "executemany", "executescript"):
            found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
            found.append(f"line {node.lineno}: {node.value[:80]!r}")
    return found


def test_the_cli_runs_no_sql():
    found = {str(p.relative_to(PACKAGE)): sql_in(_tree(p)) for p in sorted((PACKAGE / "cli").glob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}


def test_the_sql_check_catches_sql():
    assert len(sql_in(ast.parse('n = db.execute("SELECT count(*) FROM t").fetchone()\nq = "delete from t"\n'))) == 3
    assert sql_in(ast.parse('click.echo("Selected 3 items")\nh = "Delete a run and its proposals"\nx = "delete"\n')) == []


def private_imports(path: Path, tree: ast.AST | None = None) -> list[str]:
    """Private names (``_name``) the module at ``path`` takes from another module of the package."""
    tree, found = tree or _tree(path), []
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    modules: set[str] = set()  # local names bound to modules of the package
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not source.startswith("assistcode"):
                continue
            if any(part.startswith("_") and not part.startswith("__") for part in source.split(".")) and \
                    source.rpartition(".")[0] != package:
                found.append(f"line {node.lineno}: from private module {source}")
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"line {node.lineno}: {source}.{alias.name}")
                else:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name.startswith("assistcode"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules and \
                node.attr.startswith("_") and not node.attr.startswith("__"):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_private_name_is_imported_across_modules():
    found = {str(p.relative_to(PACKAGE)): private_imports(p) for p in _modules()}
    assert {k: v for k, v in found.items() if v} == {}


def test_the_private_import_check_catches_one():
    tree = ast.parse("from ..evaluate.harness import _est, EvalOptions\nfrom . import store as rs\nrs._ACTIVE.add(1)\n"
                     "from ..agreement._data import Ratings\nfrom .replies import Proposal\n")
    found = private_imports(PACKAGE / "runs" / "engine.py", tree)  # as if runs/engine.py said so
    assert len(found) == 3
    assert "harness._est" in found[0] and "private module assistcode.agreement._data" in found[1] and "rs._ACTIVE" in found[2]


# -- the packages import each other in one direction ----------------------------------------------------------------
FOUNDATION = {"errors", "ids", "resources", "model", "safeyaml", "textio", "privacy", "store", "exports", "calibration",
              "agreement", "localmodels", "transcripts", "segmenters"}
"""Modules and packages that import nothing above themselves: plain data, the store, pure statistics."""
USERS_OF_RUNS = {"cli", "project", "review", "evaluate", "suites", "report", "refi", "inductive", "demo"}


def import_graph(import_time_only: bool) -> dict[str, set[str]]:
    """Unit (a subpackage, or a top-level module) -> the units it imports. ``import_time_only``: the imports at the
    top of each module (what runs on import); else every import, those inside functions too."""
    def exists(dotted: str) -> bool:
        p = PACKAGE.parent.joinpath(*dotted.split("."))
        return p.with_suffix(".py").exists() or (p / "__init__.py").exists()

    def unit(dotted: str) -> str:
        parts = dotted.split(".")
        return parts[1] if len(parts) > 1 else "assistcode"

    edges: dict[str, set[str]] = defaultdict(set)
    for path in _modules():
        name = _name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = _tree(path)
        for node in (tree.body if import_time_only else ast.walk(tree)):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{a.name}" for a in node.names if exists(f"{source}.{a.name}")] or [source]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target.startswith("assistcode.") and exists(target) and unit(target) != unit(name):
                    edges[unit(name)].add(unit(target))
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_packages_at_import_time():
    assert cycles(import_graph(import_time_only=True)) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_upward_imports():
    edges = import_graph(import_time_only=False)  # lazy imports inside functions count too
    upward = {f"{a} -> {b}" for a, targets in edges.items() for b in targets if (
        (b == "cli" and a != "__main__")
        or (a in FOUNDATION and b not in FOUNDATION)
        or (a == "providers" and b not in FOUNDATION | {"testing"})
        or (a == "runs" and b in USERS_OF_RUNS)
        or (a == "report" and b not in FOUNDATION | {"evaluate"}))}  # reports read evaluate's results
    assert upward == set()

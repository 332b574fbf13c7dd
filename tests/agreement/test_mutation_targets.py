"""eval/mutations.py proves the interval tests bite by planting bugs in a copy of the package; here, cheaply in CI,
each planted bug must still find exactly one line to change (otherwise the mutation check would go stale)."""
import importlib.util
import sys

import pytest

from ..conftest import REPO


def test_every_mutation_finds_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("mutations", REPO / "eval" / "mutations.py")
    mutations = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "mutations", mutations)  # dataclasses look their module up there
    spec.loader.exec_module(mutations)
    assert len(mutations.MUTATIONS) == 6
    for m in mutations.MUTATIONS:
        text = (REPO / m.path).read_text()
        assert text.count(m.original) == 1, m.name
        assert m.mutant != m.original and text.replace(m.original, m.mutant) != text
    for test in mutations.TESTS:
        assert (REPO / test).is_file()

"""The helpers that keep missing test dependencies from turning into silent skips."""
import pytest

from .conftest import need, unavailable


def test_need_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no_such_module_for_assistcode"):
        need("no_such_module_for_assistcode")
    for value in ("true", "1", "TRUE"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.fail.Exception, match="CI=true: a missing test dependency fails the run"):
            need("no_such_module_for_assistcode")
        with pytest.raises(pytest.fail.Exception, match="the tokenizer does not load"):
            unavailable("the tokenizer does not load")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        unavailable("the tokenizer does not load")
    assert need("json").dumps([1]) == "[1]"  # present: the module itself

import numpy as np
import pytest

from assistcode.similarity import Embedder, not_english, thresholds

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def embedder():
    try:
        return Embedder()
    except Exception as exc:  # the extra is not installed
        pytest.skip(str(exc))


def test_embeddings_rank_meaning(embedder):
    v = embedder.embed(["Leadership has to come from the top.", "The chief executive drives quality.",
                        "Bananas are yellow."])
    assert np.allclose(np.linalg.norm(v, axis=1), 1)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_long_text_is_windowed_not_truncated(embedder):
    long = " ".join(["the ward round"] * 120) + " and then at the very end bananas bananas bananas"
    windows = embedder.windows(long)
    assert len(windows) >= 2 and all(len(w) <= 256 for w in windows)
    whole = embedder.embed([long])[0]
    first_window_only = embedder.embed([" ".join(["the ward round"] * 120)])[0]
    assert not np.allclose(whole, first_window_only)  # the end of the text counts


def test_cross_fitting_never_uses_a_units_own_label():
    rng = np.random.default_rng(0)
    score = rng.random((40, 2))
    gold = (score + rng.normal(0, 0.2, (40, 2)) > 0.5).astype(float)
    gold[30:] = np.nan  # units with no gold
    base = thresholds(score, gold, folds=5, seed=1)
    for unit in range(30):
        flipped = gold.copy()
        flipped[unit, 0] = 1 - flipped[unit, 0]
        assert thresholds(score, flipped, folds=5, seed=1)[unit, 0] == base[unit, 0]
    assert np.allclose(base[30:], base[30])  # ungolded units share the all-gold threshold


def test_not_english():
    assert not_english(["Die Führung muss von oben kommen, sagte sie gestern.", "The leadership has to come from the top."]) == 1


def test_similarity_run_through_the_cli(run, tmp_path, embedder):
    from .conftest import seed_project

    proj = seed_project(tmp_path / "p")
    r = run("code", "--provider", "similarity", "--calibrate-with", "McKee et al. 2013", "--project", proj)
    assert r.code == 0 and "20 segments" in r.out and "English model" in r.err
    again = run("code", "--provider", "similarity", "--calibrate-with", "McKee et al. 2013", "--project", proj)
    assert "already finished" in again.out
    out = run("eval", "--project", proj, "--n-boot", "100", "--json")
    import json

    comparisons = [c["comparison"] for c in json.loads(out.out)["overall"]]
    assert comparisons == ["run1:all-MiniLM-L6-v2-int8:similarity vs McKee et al. 2013"]

import numpy as np
import pytest

from assistcode.errors import InputError
from assistcode.evaluate.learning_curve import learning_curve, parse_sizes
from assistcode.project import Project

from ..test_trained import topic_project

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def topics(tmp_path_factory):
    """60 documents x 2 items, sport or cooking: separable in the embeddings; coder B differs from A on ~5%."""
    return topic_project(tmp_path_factory.mktemp("lc") / "p", n_docs=60, per_doc=2)


def test_the_classifier_learns_a_separable_code(topics):
    with Project(topics) as p:
        r = learning_curve(p, "A", sizes=[4, 10, 40], code="sport", n_boot=200)
    points = r["points"]
    assert [pt["size"] for pt in points] == [4, 10, 40]
    assert [pt["labels"] for pt in points] == [4, 10, 40]  # two items a document: every size is reached exactly
    assert r["test_units"] == 120 - 40 and r["test_documents"] == 40  # whole documents: none split
    kappas = [pt["kappa"]["value"] for pt in points]
    assert kappas[-1] >= 0.85  # separable: the classifier must get it
    assert kappas[-1] >= kappas[0] - 0.05  # more labels never do much worse
    low, high = points[-1]["kappa"]["low"], points[-1]["kappa"]["high"]
    assert low <= kappas[-1] <= high
    assert points[0]["fallbacks"]  # four labels: too few positives or negatives, counted
    ceiling = r["ceiling"]
    assert ceiling["coders"] == ["A", "B"] and 0.6 < ceiling["kappa"]["value"] < 1
    assert r["target"] == pytest.approx(0.8 * ceiling["kappa"]["value"])
    first = next(pt["size"] for pt in points if pt["kappa"]["value"] >= r["target"])
    assert r["reached_target_at"] == first


def test_code_sets_and_the_cli(run, topics):
    out = run("eval", "--learning-curve", "--train-with", "A", "--sizes", "10,40", "--n-boot", "50", "--json",
              "--project", topics)
    assert out.code == 0, out.err
    r = out.json()
    assert r["code"] is None and r["points"][-1]["alpha"]["value"] > 0.8  # MASI alpha on code sets
    assert set(r["points"][-1]["per_code"]) == {"sport", "food"}
    table = run("eval", "--learning-curve", "--train-with", "A", "--sizes", "10,40", "--n-boot", "50",
                "--project", topics)
    assert "humans" in table.out and "labels reached 80% of the ceiling" in table.out


@pytest.mark.parametrize("args, message", [
    (["--sizes", "10,x"], "sizes are whole numbers"),
    (["--sizes", "500"], "too few for sizes 500"),
    (["--code", "cricket"], "no code 'cricket'"),
    (["--train-with", "nobody"], "no coder named 'nobody'"),
])
def test_one_line_errors(run, topics, args, message):
    base = ["--train-with", "A"] if "--train-with" not in args else []
    out = run("eval", "--learning-curve", *base, *args, "--project", topics)
    assert out.code == 2 and message in out.err and len(out.err.strip().splitlines()) == 1


def test_parse_sizes():
    assert parse_sizes("50, 10,10") == [10, 50]
    with pytest.raises(InputError):
        parse_sizes("0")


def test_sizes_beyond_the_labels_are_dropped_with_a_note(topics):
    with Project(topics) as p:
        r = learning_curve(p, "A", sizes=[10, 100], code="sport", n_boot=0)
    assert [pt["size"] for pt in r["points"]] == [10] and "100" in r["notes"][0]
    assert np.isfinite(r["points"][0]["kappa"]["value"])

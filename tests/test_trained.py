import csv
from pathlib import Path

import numpy as np
import pytest

from assistcode.project import Project
from assistcode.trained import MIN_CLASS, train_and_score

pytest.importorskip("sklearn")

SPORT = ["The striker scored twice in the second half of the match.", "Our team lost the football game on penalties.",
         "The goalkeeper saved a shot in the final minute of the match.", "He ran the marathon in under three hours.",
         "The tennis player won the championship in straight sets.", "Fans cheered as the team lifted the league trophy.",
         "The coach picked a new captain for the rugby team.", "She swam the fastest lap and won the gold medal."]
FOOD = ["Simmer the tomato sauce with garlic for twenty minutes.", "Knead the bread dough and let it rise overnight.",
        "Fry the onions in butter until they turn golden.", "Whisk the eggs with sugar to make the cake batter.",
        "Season the soup with salt, pepper and fresh herbs.", "Roast the chicken in the oven with lemon and thyme.",
        "Chop the carrots finely and add them to the stew.", "Bake the pie until the pastry is crisp and brown."]
CODEBOOK = """name: topics
codes:
  - id: sport
    name: sport
    definition: The text is about sport, games or athletes.
  - id: food
    name: food
    definition: The text is about cooking or food.
"""


def topic_project(path: Path, n_docs: int = 40, per_doc: int = 3, flip: float = 0.05, seed: int = 0) -> Path:
    """A project of ``n_docs`` documents of ``per_doc`` paragraphs each, each paragraph about sport or cooking (after
    a name that varies), coded by two human coders: A codes the topic exactly, B flips ``flip`` of A's codes."""
    rng = np.random.default_rng(seed)
    src = path.parent / f"{path.name}-src"
    src.mkdir(parents=True)
    names = ["Alex", "Sam", "Jo", "Kim", "Lee", "Max", "Pat", "Ray"]
    docs, topic = [], {}
    for d in range(n_docs):
        paragraphs = []
        for _ in range(per_doc):
            sport = bool(rng.random() < 0.5)
            text = f"{names[rng.integers(8)]} said: " + (SPORT if sport else FOOD)[rng.integers(8)]
            topic[text] = "sport" if sport else "food"
            paragraphs.append(text)
        docs.append({"doc": f"doc{d:03d}", "text": "\n\n".join(paragraphs)})
    with open(src / "docs.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["doc", "text"])
        w.writeheader()
        w.writerows(docs)
    (src / "codebook.yaml").write_text(CODEBOOK, encoding="utf-8")
    from assistcode.gold import read_long
    from assistcode.readers import ReadOptions

    with Project.init(path) as p:
        p.import_codebook(src / "codebook.yaml")
        p.import_corpus([src / "docs.csv"], segmenter="paragraph", options=ReadOptions(text_column="text", id_columns=("doc",)))
        segments = p.segments()
        assert len(segments) == n_docs * per_doc
        with open(src / "gold.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["segment_id", "coder", "code"])
            for s in segments:
                code = topic[s.text]
                w.writerow([s.id, "A", code])
                w.writerow([s.id, "B", ({"sport": "food", "food": "sport"}[code] if rng.random() < flip else code)])
        p.import_gold(read_long(src / "gold.csv"))
    return path


def _synthetic(n: int = 90, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = np.c_[x[:, 0] + 0.3 * rng.normal(size=n) > 0, x[:, 1] > 0.8].astype(float)
    groups = [f"doc{i // 3}" for i in range(n)]
    return x, y, groups


def test_a_units_own_label_never_scores_it():
    x, y, groups = _synthetic()
    labels = y.copy()
    labels[75:] = np.nan  # 15 units nobody labelled
    base = train_and_score(x, labels, groups, folds=3, seed=1)
    assert not np.isnan(base.raw).any()
    for unit in (0, 10, 31, 52, 74):
        flipped = labels.copy()
        flipped[unit] = 1 - flipped[unit]
        other = train_and_score(x, flipped, groups, folds=3, seed=1)
        assert np.array_equal(other.raw[unit], base.raw[unit])  # its score
        assert np.array_equal(other.cal.threshold[unit], base.cal.threshold[unit])  # its threshold
        assert np.array_equal(other.cal.decisions[unit], base.cal.decisions[unit])
        assert not np.array_equal(other.raw[:75], base.raw[:75])  # the label did reach other units' models
    # and the decisions are good ones on this easy signal
    assert (base.cal.decisions[:, 0] == y[:, 0]).mean() > 0.85


def test_unlabelled_units_use_every_label():
    x, y, groups = _synthetic()
    labels = y.copy()
    labels[75:] = np.nan
    base = train_and_score(x, labels, groups, folds=3, seed=1)
    flipped = labels.copy()
    flipped[:30, 0] = 1 - flipped[:30, 0]  # a third of the labels of code 0 wrong
    assert not np.array_equal(train_and_score(x, flipped, groups, folds=3, seed=1).raw[75:, 0], base.raw[75:, 0])


def test_too_few_positives_fall_back_and_are_counted():
    x, y, groups = _synthetic()
    labels = y.copy()
    labels[:, 1] = 0
    labels[[3, 40], 1] = 1  # 2 positives: fewer than MIN_CLASS in every training part
    assert MIN_CLASS == 3
    r = train_and_score(x, labels, groups, folds=3, seed=0)
    assert r.fallbacks == {"1": 3}  # in each of the three folds; code 0 never
    labels[80:] = np.nan  # now some units are unlabelled: the all-labels model falls back too
    assert train_and_score(x, labels, groups, folds=3, seed=0).fallbacks == {"1": 4}
    assert not r.cal.decisions[:, 1].any()


def test_trained_run_through_the_cli(run, tmp_path):
    from assistcode.runs.scores import load_scores

    proj = topic_project(tmp_path / "p", n_docs=20)
    r = run("code", "--provider", "trained", "--train-with", "A", "--project", proj)
    assert r.code == 0, r.err
    assert "run1:all-MiniLM-L6-v2-int8+logreg:trained" in r.out and "60 segments" in r.out
    again = run("code", "--provider", "trained", "--train-with", "A", "--project", proj)
    assert "already finished" in again.out
    with Project(proj) as p:
        m = load_scores(p.db, 1)
        assert m.raw.shape == (60, 2) and m.prob is not None
        manifest = p.db.execute("SELECT manifest FROM runs WHERE id = 1").fetchone()[0]
    import json

    manifest = json.loads(manifest)
    assert manifest["labels"]["train_with"] == "A" and manifest["labels"]["units"] == 60
    assert manifest["calibration"]["method"] == "platt"
    out = run("eval", "--project", proj, "--coders", "A,run1:all-MiniLM-L6-v2-int8+logreg:trained", "--reference", "A",
              "--n-boot", "0", "--json")
    assert out.code == 0, out.err
    alpha = out.json()["overall"][0]["estimates"][0]["value"]
    assert alpha > 0.8  # cross-fitted, yet the topics are easy
    queued = run("review", "queue", "--run", "1", "--priority", "uncertainty", "--audit", "0", "--json", "--project", proj)
    assert queued.code == 0, queued.err
    assert queued.json()[0]["queued"] == 60
    other = run("code", "--provider", "trained", "--train-with", "A", "--calibration", "threshold", "--project", proj)
    assert other.code == 0 and "run2:" in other.out  # another calibration is another run
    with Project(proj) as p:
        manifest = json.loads(p.db.execute("SELECT manifest FROM runs WHERE id = 2").fetchone()[0])
    assert manifest["calibration"]["method"] == "threshold"


@pytest.mark.parametrize("args, message", [
    (["--train-with", "nobody"], "no coder named 'nobody' to train on"),
    ([], "--train-with"),
    (["--train-with", "A", "--features", "7"], "no run '7'"),
    (["--train-with", "reviewed"], "no settled review decisions to learn from yet"),
])
def test_trained_one_line_errors(run, tmp_path, args, message):
    proj = topic_project(tmp_path / "p", n_docs=4)
    r = run("code", "--provider", "trained", *args, "--project", proj)
    assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1
    with Project(proj) as p:
        assert p.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def _scored_run(p: Project, prob: list[list[float]], raw: list[list[float]] | None):
    """A run over the project's first segments holding the given calibrated probabilities (codes sport, food)."""
    from assistcode.calibration import Calibration
    from assistcode.runs import store as rs
    from assistcode.runs.scores import ScoreMatrix, record_scores, store_calibration

    segs = [s.id for s in p.segments()][:len(prob)]
    run = rs.create_run(p.db, "fake:trained", "fp", {})
    codes = ["sport", "food"]
    raw_m = np.array(raw if raw is not None else prob)
    for i, seg in enumerate(segs):
        rs.record_segment(p.db, run, seg, status="ok")
        record_scores(p.db, run.id, seg, dict(zip(codes, raw_m[i])))
    if raw is not None:
        pm = np.array(prob)
        cal = Calibration(prob=pm, threshold=np.full(pm.shape, 0.5), decisions=pm >= 0.5, method="platt")
        store_calibration(p.db, rs.get_run(p.db, run.id), p.codebook(), ScoreMatrix(segs, codes, raw_m, None), cal)
    return run, segs


def test_uncertainty_puts_the_least_sure_first(tmp_path):
    from assistcode.review import enqueue

    proj = topic_project(tmp_path / "p", n_docs=2)
    with Project(proj) as p:
        # calibrated probabilities: segment 2 is the least sure (0.55), then 0 (0.3), then 3 (0.9), then 1 (0.02 / 0.99);
        # the raw scores would order them the other way
        prob = [[0.3, 0.1], [0.02, 0.99], [0.55, 0.2], [0.9, 0.05]]
        raw = [[0.99, 0.0], [0.5, 0.5], [0.01, 0.0], [0.6, 0.4]]
        run, segs = _scored_run(p, prob, raw)
        report = enqueue(p.db, run.id, signals=["uncertainty"], audit=0.0)
        assert report.queued == 4
        rows = p.db.execute("SELECT segment_id, priority, reasons FROM review_items ORDER BY priority DESC").fetchall()
        assert [r[0] for r in rows] == [segs[2], segs[0], segs[3], segs[1]]
        assert rows[0][1] == pytest.approx(0.9) and "uncertainty" in rows[0][2]


def test_uncertainty_on_a_run_without_scores_is_one_line(run, tmp_path):
    from assistcode.runs import store as rs

    proj = topic_project(tmp_path / "p", n_docs=2)
    with Project(proj) as p:
        r = rs.create_run(p.db, "mock:deductive", "fp", {})
        rs.record_segment(p.db, r, p.segments()[0].id, status="ok")
    out = run("review", "queue", "--run", "1", "--priority", "uncertainty", "--project", proj)
    assert out.code == 2 and "holds no per-code probabilities" in out.err and len(out.err.strip().splitlines()) == 1
    with Project(proj) as p:
        assert p.db.execute("SELECT count(*) FROM review_items").fetchone()[0] == 0
    ok = run("review", "queue", "--run", "1", "--priority", "disagreement", "--project", proj)
    assert ok.code == 0, ok.err


def test_features_from_a_scoring_run(run, tmp_path):
    """A scoring run's probabilities become features; segments it did not score are left out, with a note."""
    from assistcode.runs.scores import load_scores

    proj = topic_project(tmp_path / "p", n_docs=10)
    with Project(proj) as p:
        segs = p.segments()[:24]
        gold = {s: c for s, c in p.db.execute("SELECT segment_id, code FROM annotations WHERE coder = 'A'")}
        prob = [[0.9 if gold[s.id] == "sport" else 0.2, 0.8 if gold[s.id] == "food" else 0.1] for s in segs]
        _scored_run(p, prob, None)
    r = run("code", "--provider", "trained", "--train-with", "A", "--features", "1", "--project", proj)
    assert r.code == 0, r.err
    assert "run2:all-MiniLM-L6-v2-int8+logreg+run1:trained: 24 segments" in r.out
    assert "6 of 30 segments have no scores in run1:fake:trained" in r.err
    with Project(proj) as p:
        assert load_scores(p.db, 2).raw.shape == (24, 2)

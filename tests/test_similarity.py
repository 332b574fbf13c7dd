import numpy as np
import pytest

from assistcode.similarity import Embedder, not_english

from .conftest import need, unavailable


@pytest.fixture(scope="module")
def embedder():
    need("onnxruntime")
    need("tokenizers")
    try:
        return Embedder()
    except Exception as exc:  # the extra is not installed, or the tokenizer fails to load: a skip here, a failure in CI
        unavailable(f"the similarity embedder does not load: {exc}")


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


def _run_facts(project_dir, coder):
    from assistcode.project import Project
    from assistcode.runs import store as rs
    from assistcode.runs.scores import load_scores

    with Project(project_dir) as p:
        run = rs.get_run(p.db, coder)
        matrix = load_scores(p.db, run.id)
        proposals = {(s, c): conf for s, c, conf in p.db.execute(
            "SELECT segment_id, code, confidence FROM annotations WHERE coder = ?", (coder,))}
        n_codes = len(p.codebook().codes)
    return run, matrix, proposals, n_codes


def test_similarity_stores_cosines_and_calibrated_probabilities(run, tmp_path, embedder):
    from .conftest import seed_project

    proj = seed_project(tmp_path / "p")
    assert run("code", "--provider", "similarity", "--calibrate-with", "McKee et al. 2013", "--project", proj).code == 0
    r, matrix, proposals, n_codes = _run_facts(proj, "run1:all-MiniLM-L6-v2-int8:similarity")
    assert matrix.raw.shape == (20, n_codes) and np.all((matrix.raw >= -1) & (matrix.raw <= 1))
    assert matrix.prob is not None and np.all((matrix.prob >= 0) & (matrix.prob <= 1))
    cal = r.manifest["calibration"]
    assert cal["method"] == "platt" and cal["label_source"] == "McKee et al. 2013"
    assert cal["labelled_units"] == 20 and cal["folds"] >= 2 and cal["bounds"] == [-1.0, 1.0]
    # every proposal's confidence is its calibrated probability, and proposals are the decisions taken on them
    assert proposals
    for (seg, code), conf in proposals.items():
        assert conf == matrix.prob[matrix.segment_ids.index(seg), matrix.codes.index(code)]
    # the seed codebook is exclusive: at most one code per quote
    assert max(sum(1 for (s, _) in proposals if s == seg) for seg in matrix.segment_ids) == 1


def test_similarity_calibration_options(run, tmp_path, embedder):
    from .conftest import seed_project

    proj = seed_project(tmp_path / "p")
    bad = run("code", "--provider", "similarity", "--calibration", "isotonic", "--project", proj)
    assert bad.code == 2 and "needs labels" in bad.err and "--calibrate-with" in bad.err
    none = run("code", "--provider", "similarity", "--calibrate-with", "reviewed", "--project", proj)
    assert none.code == 2 and "no settled review decisions" in none.err
    unknown = run("code", "--provider", "similarity", "--calibrate-with", "nobody", "--project", proj)
    assert unknown.code == 2 and "--calibrate-with" in unknown.err and "nobody" in unknown.err
    plain = run("code", "--provider", "similarity", "--project", proj)
    assert plain.code == 0 and "no gold to calibrate on" in plain.out
    r, matrix, proposals, _ = _run_facts(proj, plain.out.split(":")[0] + ":all-MiniLM-L6-v2-int8:similarity")
    assert r.manifest["calibration"]["method"] == "none"
    # no labels: a code is proposed where the cosine passes the default threshold (0.35), the best one per quote
    for (seg, code), conf in proposals.items():
        cosine = matrix.raw[matrix.segment_ids.index(seg), matrix.codes.index(code)]
        assert cosine >= 0.35 and conf == (cosine + 1) / 2
    ctx = run("code", "--provider", "similarity", "--calibration", "contextual", "--project", proj)
    assert ctx.code == 0
    r, _, _, _ = _run_facts(proj, ctx.out.split(":")[0] + ":all-MiniLM-L6-v2-int8:similarity")
    assert r.manifest["calibration"]["content_free_inputs"] == 3


def test_calibrate_with_reviewed_decisions(tmp_path, embedder):
    from assistcode import review
    from assistcode.evaluate import from_store
    from assistcode.project import Project
    from assistcode.similarity import run_similarity

    from .conftest import seed_project

    with Project(seed_project(tmp_path / "p")) as p:
        first, _ = run_similarity(p)
        review.enqueue(p.db, first.run.coder, audit=0.0)
        gold = from_store(p.db, ["McKee et al. 2013"], p.codebook())
        truth = dict(zip(gold.units, gold.sets[0]))
        for item_id, seg in p.db.execute("SELECT id, segment_id FROM review_items").fetchall():
            review.decide(p.db, item_id, "ann", "edit", codes=sorted(truth[seg]), codebook=p.codebook())
        by_review, _ = run_similarity(p, calibrate_with="reviewed")
        by_gold, _ = run_similarity(p, calibrate_with="McKee et al. 2013")
        assert by_review.run.manifest["calibration"]["label_source"] == "reviewed"
        assert by_review.run.manifest["calibration"]["labelled_units"] == 20

        def decisions(coder):
            return sorted(tuple(r) for r in p.db.execute("SELECT segment_id, code, confidence FROM annotations WHERE coder = ?",
                                                         (coder,)))

        # the reviewer gave the same labels as the authors: the same calibration, the same proposals
        assert decisions(by_review.run.coder) == decisions(by_gold.run.coder) != []

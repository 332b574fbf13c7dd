import json

import numpy as np
import pytest

from assistcode.agreement import cohen_kappa, krippendorff_alpha
from assistcode.errors import InputError
from assistcode.evaluate import CodingData, EvalOptions, evaluate, from_store, holm, permutation_p
from assistcode.gold import read_gold
from assistcode.model import Code, Codebook

F = frozenset


def data_with_model(n=40, seed=0):
    rng = np.random.default_rng(seed)
    codes = ["a", "b", "c"]
    truth = rng.integers(0, 3, n)
    def noisy(acc):
        return [F({codes[t if rng.random() < acc else rng.integers(0, 3)]}) for t in truth]
    h1, h2, m = noisy(0.9), noisy(0.85), noisy(0.8)
    m[3] = None  # the model failed on one unit
    return CodingData(tuple(f"u{i}" for i in range(n)), ("h1", "h2", "gpt"), (tuple(h1), tuple(h2), tuple(m)),
                      kinds={"h1": "human", "h2": "human", "gpt": "model"}, clusters=tuple(f"d{i // 4}" for i in range(n)))


def test_evaluate_model_against_humans():
    data = data_with_model()
    result = evaluate(data, EvalOptions(n_boot=200))
    comps = {c["comparison"]: c for c in result["overall"]}
    assert set(comps) == {"humans (ceiling)", "gpt vs consensus", "gpt vs h1", "gpt vs h2", "humans + gpt"}
    # figures agree with the plain functions on the same units
    single = [[next(iter(s)) if s else None for s in data.row(c)] for c in ("gpt", "h1")]
    kappa = next(e for e in comps["gpt vs h1"]["estimates"] if e["statistic"] == "cohen_kappa")
    assert kappa["value"] == pytest.approx(cohen_kappa(single), rel=1e-12)
    assert kappa["n_units"] == 39 and kappa["clustered"]  # the failed unit is left out, not "no code"
    assert any("gpt coded 97.5%" in n for n in result["notes"])
    per_code = {r["code"]: r for r in result["per_code"]}
    assert set(per_code) == {"a", "b", "c"}
    for r in per_code.values():
        assert r["coders"] == ["gpt", "consensus"] and 0 <= r["p_holm"] <= 1 and r["p_holm"] >= r["p_value"]
        assert r["ceiling"]["statistic"] == "krippendorff_alpha"
        assert r["tp"] + r["fn"] > 0
    # the model's place: each coder's mean MASI alpha with the humans (other than itself), best first
    pair = lambda a, b: krippendorff_alpha(data.set_matrix([a, b]), "masi")  # noqa: E731
    expected = {"h1": pair("h1", "h2"), "h2": pair("h2", "h1"), "gpt": (pair("gpt", "h1") + pair("gpt", "h2")) / 2}
    place = result["place"]
    assert [p["coder"] for p in place] == ["h1", "h2", "gpt"] and place[2]["kind"] == "model"
    for p in place:
        assert p["mean_alpha_with_humans"] == pytest.approx(expected[p["coder"]], rel=1e-12)
    assert place[2]["mean_alpha_with_humans"] < place[0]["mean_alpha_with_humans"]  # accuracy 0.8 below 0.9 and 0.85
    assert result["confusion"]["rows"] == "gpt" and len(result["confusion"]["labels"]) == 4
    json.dumps(result)  # JSON-ready


def test_two_humans_only_gives_the_ceiling_and_per_code_among_them():
    data = data_with_model().subset(["h1", "h2"])
    result = evaluate(data, EvalOptions(n_boot=100))
    assert [c["comparison"] for c in result["overall"]] == ["humans (ceiling)"]
    assert result["per_code"][0]["coders"] == ["h1", "h2"] and "p_value" not in result["per_code"][0]


def test_one_coder_is_a_clear_error():
    with pytest.raises(InputError, match="nothing to compare"):
        evaluate(data_with_model().subset(["h1"]))


def test_consensus_is_a_strict_majority_of_those_who_saw():
    data = CodingData(("u1", "u2", "u3"), ("a", "b", "c"),
                      ((F("x"), F("x"), None), (F("xy"), F(), None), (F("y"), None, None)))
    cons = data.with_consensus(coders=["a", "b", "c"]).row("consensus")
    assert cons == (F("xy"), F(), None)  # u1: x and y 2 of 3 each; u2: 1 of 2 is a tie, so not applied


def test_rollup_by_codebook_and_by_arrows():
    cb = Codebook("t", (Code("theme", "T"), Code("sub", "S", parent="theme"), Code("other", "O")))
    data = CodingData(("u",), ("a", "b"), ((F({"sub"}),), (F({"theme", "other"}),)))
    assert data.rollup(1, cb).row("a") == (F({"theme"}),)
    arrows = CodingData(("u",), ("a", "b"), ((F({"p->c->d"}),), (F({"p->x"}),)))
    assert arrows.rollup(1).row("a") == (F({"p"}),) and arrows.rollup(2).row("a") == (F({"p->c"}),)


def test_permutation_p_is_the_exact_one_sided_test():
    from scipy.stats import fisher_exact

    rng = np.random.default_rng(1)
    ref = rng.integers(0, 2, 60).astype(float)
    model = np.where(rng.random(60) < 0.8, ref, 1 - ref)
    table = [[np.sum((model == 1) & (ref == 1)), np.sum((model == 1) & (ref == 0))],
             [np.sum((model == 0) & (ref == 1)), np.sum((model == 0) & (ref == 0))]]
    assert permutation_p(model, ref) == pytest.approx(fisher_exact(table, alternative="greater")[1], rel=1e-9)
    # and against brute-force permutations
    obs = cohen_kappa([model, ref])
    perms = [cohen_kappa([rng.permutation(model), ref]) for _ in range(4000)]
    assert permutation_p(model, ref) == pytest.approx((np.sum(np.array(perms) >= obs - 1e-12) + 1) / 4001, abs=0.01)


def test_holm():
    assert holm([0.01, 0.04, None, 0.03]) == [0.03, 0.06, None, 0.06]
    from statsmodels.stats.multitest import multipletests

    ps = [0.001, 0.2, 0.03, 0.04, 0.5]
    assert holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]))


def test_from_store_and_breakdown(project, tmp_path):
    (tmp_path / "p1.txt").write_text("I: q\nR: one\nI: q2\nR: two")
    (tmp_path / "p2.txt").write_text("I: q\nR: three\nI: q4\nR: four")
    (tmp_path / "meta.csv").write_text("source,role\np1.txt,nurse\np2.txt,manager\n")
    project.import_corpus([tmp_path / "p1.txt", tmp_path / "p2.txt"], metadata_file=tmp_path / "meta.csv")
    (tmp_path / "cb.yaml").write_text("codes:\n  - id: x\n  - id: y\n")
    project.import_codebook(tmp_path / "cb.yaml")
    segs = project.segments()
    rows = ["segment_id,coder,code"]
    for i, s in enumerate(segs):
        rows.append(f"{s.id},ann,{'x' if i % 2 else 'y'}")
        rows.append(f"{s.id},bob,{'x' if i % 3 else ''}")
    (tmp_path / "g.csv").write_text("\n".join(rows) + "\n")
    project.import_gold(read_gold(tmp_path / "g.csv"))
    data = from_store(project.db, codebook=project.codebook())
    assert data.coders == ("ann", "bob") and len(data.units) == 8 and data.codes == ("x", "y")
    by_id = {s.id: i for i, s in enumerate(segs)}
    first = by_id[data.units[0]]
    assert data.row("bob")[0] == (F("x") if first % 3 else F()) and data.clusters[0] == segs[first].document_id
    assert data.row("ann")[0] == F("x" if first % 2 else "y")
    result = evaluate(data, EvalOptions(n_boot=50, by=["role"]))
    assert {b["value"] for b in result["breakdown"]} == {"nurse", "manager"}
    assert sum(b["n_units"] for b in result["breakdown"]) == 8
    masi = [e for e in result["overall"][0]["estimates"]
            if e["statistic"] == "krippendorff_alpha" and e["convention"].endswith("level masi")]
    assert len(masi) == 1
    assert masi[0]["value"] == pytest.approx(krippendorff_alpha(data.set_matrix(), "masi"), rel=1e-12)
    with pytest.raises(InputError, match="no document metadata field 'site'"):
        evaluate(data, EvalOptions(n_boot=0, by=["site"]))

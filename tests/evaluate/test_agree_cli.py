import json

import pytest


from assistcode.agreement.summary import estimate

from ..conftest import DATA, needs_shared, seed_project
from ..agreement.test_published import KRIPPENDORFF_2011

CONVABUSE_ARGS = [
    "--format", "onehot", "--unit-column", "conv_id,prev_agent,prev_user,agent,user", "--coder-column", "annotator_id",
    "--code-columns", "is_abuse.*,type.*,target.*", "--variable", "severity=is_abuse.*:ordinal",
    "--defined-if", "type.*:is_abuse.-1|is_abuse.-2|is_abuse.-3", "--defined-if", "target.*:is_abuse.-1|is_abuse.-2|is_abuse.-3",
]


def long_file(tmp_path):
    rows = ["unit,coder,code"]
    for c, row in enumerate(KRIPPENDORFF_2011):
        for u, v in enumerate(row):
            if v is not None:
                rows.append(f"u{u:02d},c{c},{v}")
    path = tmp_path / "k.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_agree_long_file_every_statistic(run, tmp_path):
    r = run("agree", long_file(tmp_path), "--level", "ordinal", "--json", "--n-boot", "200")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    (variable,) = result["variables"]
    stats = {e["statistic"]: e for e in variable["estimates"]}
    assert set(stats) == {"percent_agreement", "fleiss_kappa", "gwet_ac1", "brennan_prediger", "krippendorff_alpha"}
    assert round(stats["krippendorff_alpha"]["value"], 3) == 0.815  # ordinal, Krippendorff (2011)
    assert round(stats["gwet_ac1"]["value"], 4) == 0.7754
    # units in the order the file first names them (coder by coder: u10 is first rated by the third coder, after u11)
    order = [*range(10), 11, 10]
    matrix = [[row[u] for u in order] for row in KRIPPENDORFF_2011]
    for name, e in stats.items():
        # each figure is the library's estimate on the same matrix: value, BCa interval (seed 0) and analytic SE
        same = estimate(name, matrix, level="ordinal", n_boot=200, seed=0)
        assert (e["value"], e["low"], e["high"]) == pytest.approx((same.value, same.low, same.high), rel=1e-12), name
        assert e["ci_method"] == "bca" and e["n_boot"] == 200 and e["level"] == 0.95
        assert e["low"] < e["value"] and e["high"] - e["low"] > 0.05, name  # a real interval, not a point
        assert e["n_units"] == 11 and e["n_coders"] == 4
        if name != "krippendorff_alpha":
            assert e["se"] == pytest.approx(same.se, rel=1e-12) and e["se"] > 0


def test_agree_wide_two_coders_adds_kappas(run, tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("unit,ann,bob\n1,1,1\n2,2,2\n3,3,2\n4,1,1\n5,2,3\n6,3,3\n")
    r = run("agree", path, "--format", "wide", "--json", "--n-boot", "100")
    names = [e["statistic"] for e in json.loads(r.out)["variables"][0]["estimates"]]
    assert {"cohen_kappa", "scott_pi", "weighted_kappa (linear)", "weighted_kappa (quadratic)"} <= set(names)


def test_agree_reports_are_written(run, tmp_path):
    out = tmp_path / "out"
    r = run("agree", long_file(tmp_path), "--n-boot", "100", "--markdown", out / "r.md", "--html", out / "r.html",
            "--json-out", out / "r.json")
    assert r.code == 0
    assert "Krippendorff (2011)" in r.out and "n units" in r.out
    md = (out / "r.md").read_text()
    assert "| statistic | value [95% CI] |" in md and "level nominal" in md
    html = (out / "r.html").read_text()
    assert html.count("<svg") == 1 and "<script" not in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    assert json.loads((out / "r.json").read_text())["meta"]["n_units"] == 12


def test_agree_convabuse_per_label_with_intervals(run, tmp_path):
    path = needs_shared(DATA / "convabuse" / "ConvAbuseEMNLPfull.csv")
    r = run("agree", path, *CONVABUSE_ARGS, "--n-boot", "100", "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["meta"]["n_units"] == 4185 and result["meta"]["coders_per_unit"] == {
        "2": 1094, "3": 2445, "4": 377, "5": 235, "6": 33, "7": 1}
    (severity,) = result["variables"]
    assert severity["values"] == [-3, -2, -1, 0, 1] and severity["level"] == "ordinal"
    labels = {lab["label"]: lab for lab in result["labels"]}
    assert len(labels) == 10  # 7 types + 3 targets
    for lab in labels.values():
        stats = {e["statistic"]: e for e in lab["estimates"]}
        for name in ("krippendorff_alpha", "gwet_ac1"):
            e = stats[name]
            assert e["value"] is None or (e["low"] is not None and e["low"] <= e["value"] <= e["high"])
    # type labels are defined only where that annotator judged the turn abusive: fewer units than the whole set
    assert labels["type.sexist"]["units_defined"] < 1000
    assert any("repeated ratings" in n for n in result["notes"])


def test_agree_bad_file(run, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("unit,coder,code\n1,a,x\n")
    r = run("agree", path)
    assert r.code == 2 and "only 1 coder" in r.err
    r = run("agree", tmp_path / "none.csv")
    assert r.code == 2 and "no such file" in r.err


def test_eval_command_on_a_project(run, tmp_path):
    proj = seed_project(tmp_path / "p")
    r = run("eval", "--project", proj)
    assert r.code == 2 and "only 1 coder" in r.err and "assistcode code" in r.err
    # a second human coder: the ceiling appears
    import sqlite3

    db = sqlite3.connect(proj / "assistcode.db")
    segs = [row[0] for row in db.execute("SELECT segment_id FROM seen")]
    rows = ["segment_id,coder,code"] + [f"{s},second,{'organisations' if i % 3 else 'every-level'}" for i, s in enumerate(segs)]
    (tmp_path / "second.csv").write_text("\n".join(rows) + "\n")
    assert run("import-gold", tmp_path / "second.csv", "--project", proj).code == 0
    r = run("eval", "--project", proj, "--n-boot", "100", "--by", "participant_id", "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["overall"][0]["comparison"] == "humans (ceiling)"
    assert result["meta"]["clustered_by_document"] and any("only 20 units" in n for n in result["notes"])


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_agree_reads_jsonl_and_parquet(run, tmp_path, suffix):
    import pandas as pd

    frame = pd.read_csv(long_file(tmp_path), dtype=str)
    path = tmp_path / f"k.{suffix}"
    if suffix == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    r = run("agree", path, "--level", "interval", "--json", "--n-boot", "0")
    alpha = next(e for e in json.loads(r.out)["variables"][0]["estimates"] if e["statistic"] == "krippendorff_alpha")
    assert round(alpha["value"], 3) == 0.849

import pytest

from assistcode.errors import GoldError, ProjectError
from assistcode.gold import read_gold, read_long, read_onehot, read_wide

from .conftest import DATA, needs_shared

CODEBOOK = "codes:\n  - id: a\n    name: Alpha\n  - id: b\n    name: Beta\n"


def test_long_with_seen_record(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("segment_id,coder,code\ns1,ann,a\ns1,ann,b\ns2,ann,\ns1,bob,a\n")
    table = read_long(path)
    assert table.explicit_seen
    sets = table.code_sets()
    assert sets["ann"] == {"s1": {"a", "b"}, "s2": frozenset()}
    assert sets["bob"] == {"s1": {"a"}}  # bob never saw s2: missing, not "no code"


def test_long_without_seen_record_says_what_it_assumes(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("segment_id,coder,code\ns1,ann,a\ns2,bob,b\n")
    table = read_long(path)
    assert not table.explicit_seen and "taken to have seen" in table.notes[0]


def test_wide(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("segment_id,ann,bob\ns1,a;b,a\ns2,,b\n")
    assert read_wide(path).code_sets()["ann"] == {"s1": {"a", "b"}}
    assert read_wide(path, empty="uncoded").code_sets()["ann"] == {"s1": {"a", "b"}, "s2": frozenset()}


def test_onehot_keeps_first_rating_and_counts_repeats(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text("conv,text,who,x.a,x.b\n1,hi,A1,1,0\n1,hi,A2,0,0\n1,hi,A1,0,1\n2,yo,A1,1,1\n")
    table = read_onehot(path, unit_columns=["conv", "text"], coder_column="who", code_columns=["x.*"])
    assert table.repeats == 1 and "1 repeated" in table.notes[0]
    sets = table.code_sets()
    assert sets["A1"] == {"1\x1fhi": {"x.a"}, "2\x1fyo": {"x.a", "x.b"}}
    assert sets["A2"] == {"1\x1fhi": frozenset()}


def test_onehot_rejects_non_binary_values(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text("u,who,c\n1,A,2\n")
    with pytest.raises(GoldError, match=r"o.csv:2: field 'c': expected 0 or 1, found '2'"):
        read_onehot(path, unit_columns=["u"], coder_column="who")


def test_convabuse_units_and_repeats():
    path = needs_shared(DATA / "convabuse" / "ConvAbuseEMNLPfull.csv")
    table = read_onehot(path, unit_columns=["conv_id", "prev_agent", "prev_user", "agent", "user"],
                        coder_column="annotator_id", code_columns=["is_abuse.*", "type.*", "target.*", "direction.*"])
    assert len(table.units) == 4185
    assert table.repeats == 12768 - sum(len(u) for u in table.code_sets().values())
    assert sorted(table.coders) == [f"Annotator{i}" for i in range(1, 9)]


def test_project_gold_import_checks_segments_and_codes(project, tmp_path):
    (tmp_path / "t.txt").write_text("I: one\nR: two\nI: three")
    project.import_corpus([tmp_path / "t.txt"])
    segs = project.segments()
    with pytest.raises(ProjectError, match="no codebook"):
        project.import_gold(read_gold(_write(tmp_path, f"segment_id,coder,code\n{segs[0].id},ann,a\n")))
    (tmp_path / "cb.yaml").write_text(CODEBOOK)
    project.import_codebook(tmp_path / "cb.yaml")
    bad_segment = _write(tmp_path, f"segment_id,coder,code\n{segs[0].id},ann,a\nnope,ann,a\n")
    with pytest.raises(GoldError, match=r"g.csv:3: unknown segment 'nope'"):
        project.import_gold(read_gold(bad_segment))
    bad_code = _write(tmp_path, f"segment_id,coder,code\n{segs[0].id},ann,zz\n", "c.csv")
    with pytest.raises(GoldError, match=r"c.csv:2: field 'code': unknown code 'zz'"):
        project.import_gold(read_gold(bad_code))
    assert project.counts()["annotations"] == 0 and project.counts()["coders"] == 0  # nothing written
    report = project.import_gold(read_gold(bad_segment), skip_bad=True)
    assert report.rows_skipped == 1 and report.annotations_added == 1
    # codes by name work too; seen is assumed over the coded document
    report = project.import_gold(read_gold(_write(tmp_path, f"segment_id,coder,code\n{segs[1].id},bob,Beta\n", "n.csv")))
    assert report.annotations_added == 1 and report.seen_added == 3
    assert project.import_gold(read_gold(bad_segment), skip_bad=True).annotations_added == 0  # idempotent


def _write(tmp_path, text, name="g.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path

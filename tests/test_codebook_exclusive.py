"""The codebook field `exclusive: true`: part of the hash only when set, kept by the project and by dump_yaml."""
from assistcode.codebook import dump_yaml, load_codebook
from assistcode.gold_standards import load_into
from assistcode.project import Project

BODY = "name: cb\ncodes:\n  - id: a\n    name: A\n  - id: b\n    name: B\n"


def test_exclusive_changes_the_hash_only_when_set(tmp_path):
    (tmp_path / "plain.yaml").write_text(BODY)
    (tmp_path / "excl.yaml").write_text("exclusive: true\n" + BODY)
    (tmp_path / "false.yaml").write_text("exclusive: false\n" + BODY)
    plain, excl, false = (load_codebook(tmp_path / f"{n}.yaml") for n in ("plain", "excl", "false"))
    assert not plain.exclusive and excl.exclusive and not false.exclusive
    assert plain.hash == false.hash != excl.hash
    (tmp_path / "again.yaml").write_text(dump_yaml(excl))
    again = load_codebook(tmp_path / "again.yaml")
    assert again.exclusive and again.hash == excl.hash


def test_the_project_keeps_it_and_the_seed_sets_it(tmp_path):
    (tmp_path / "excl.yaml").write_text("exclusive: true\n" + BODY)
    project = Project.init(tmp_path / "p")
    cb, _ = project.import_codebook(tmp_path / "excl.yaml")
    assert project.codebook().exclusive and project.codebook().hash == cb.hash
    project.close()
    seed = Project.init(tmp_path / "seed")
    load_into(seed, "leadership-quality-safety")
    assert seed.codebook().exclusive
    seed.close()

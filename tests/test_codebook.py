import pytest

from assistcode.codebook import dump_yaml, load_codebook
from assistcode.errors import CodebookError

GOOD = """name: Demo
codes:
  - id: theme
    name: A theme
    definition: Broad.
    children:
      - id: sub
        name: A sub-code
        examples: [one, two]
  - id: other
    name: Other
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_hierarchy_and_rollup(tmp_path):
    cb = load_codebook(write(tmp_path, "c.yaml", GOOD))
    assert [c.id for c in cb] == ["theme", "sub", "other"]
    assert cb.by_id["sub"].parent == "theme" and cb.by_id["sub"].examples == ("one", "two")
    assert cb.rollup("sub", 1) == "theme" and cb.rollup("other", 1) == "other" and cb.depth("sub") == 2


def test_hash_changes_with_wording_only(tmp_path):
    a = load_codebook(write(tmp_path, "a.yaml", GOOD))
    b = load_codebook(write(tmp_path, "b.yaml", GOOD.replace("Broad.", "Broader.")))
    c = load_codebook(write(tmp_path, "c.yaml", "# a comment\n" + GOOD))
    assert a.hash != b.hash and a.hash == c.hash
    assert load_codebook(write(tmp_path, "d.yaml", dump_yaml(a))).hash == a.hash


def test_csv_codebook(tmp_path):
    path = write(tmp_path, "c.csv", "id,name,definition,examples,parent\nt,Theme,d,,\ns,Sub,,x | y,t\n")
    cb = load_codebook(path)
    assert cb.by_id["s"].examples == ("x", "y") and cb.by_id["s"].parent == "t"


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("dup.yaml", "codes:\n  - id: a\n    name: A\n  - id: a\n    name: B\n",
         "dup.yaml:4: field 'id': duplicate code id 'a' (first defined on line 2)"),
        ("parent.yaml", "codes:\n  - id: a\n    name: A\n    parent: zz\n",
         "parent.yaml:2: field 'parent': code 'a' names unknown parent 'zz'"),
        ("cycle.yaml", "codes:\n  - id: a\n    parent: b\n  - id: b\n    parent: a\n",
         "cycle.yaml:2: field 'parent': parent cycle a -> b -> a"),
        ("empty.yaml", "codes:\n  - id: a\n    name: ''\n  - id: ' '\n", "empty.yaml:4: field 'id': empty code id"),
        ("key.yaml", "codes:\n  - id: a\n    defn: x\n", "key.yaml:2: field 'defn': unknown key 'defn'"),
        ("dup.csv", "id,name\na,A\nb,B\na,C\n", "dup.csv:4: field 'id': duplicate code id 'a' (first defined on line 2)"),
        ("col.csv", "id,nom\na,A\n", "col.csv:1: field 'nom': unknown column 'nom'"),
        ("bad.yaml", "codes: [\n", "bad.yaml:2: not valid YAML"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, name, text, expected):
    with pytest.raises(CodebookError) as err:
        load_codebook(write(tmp_path, name, text))
    assert str(err.value).startswith(str(tmp_path / expected.split(":")[0]) + ":" + expected.split(":", 1)[1])

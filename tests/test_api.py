"""The Python API (issue 14 items 13, 15, 16; issue 18's interview defaults): everything the CLI does is a call on
``Project``, tables in and out as DataFrames and ``datasets.Dataset`` objects, with examples that run."""
from __future__ import annotations

import doctest
import importlib
import inspect
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from assistcode.project import Project
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[1]
CODEBOOK = "name: Ward\ncodes:\n  - id: safety\n    name: Safety\n  - id: workload\n    name: Workload\n"
TEXTS = ["I felt safe on the ward.", "Too much workload, always.", "Safety first, but the workload!", "Nothing to add."]


def _project(tmp_path: Path) -> Project:
    """Four survey answers (a DataFrame) and a two-code codebook."""
    pd = need("pandas")
    (tmp_path / "cb.yaml").write_text(CODEBOOK)
    project = Project.init(tmp_path / "proj")
    project.import_corpus(pd.DataFrame({"id": ["r1", "r2", "r3", "r4"], "text": TEXTS}), id_columns=["id"])
    project.import_codebook(tmp_path / "cb.yaml")
    return project


def _humans(project: Project):  # type: ignore[no-untyped-def]
    pd = need("pandas")
    ids = [s.id for s in project.segments()]
    return pd.DataFrame({"segment_id": ids * 2, "coder": ["ann"] * 4 + ["ben"] * 4,
                         "code": ["safety", "workload", "safety", None, "safety", "workload", "workload", None]})


# -- item 13: import_gold takes a path, a DataFrame, a Dataset ------------------------------------------------------
def test_import_gold_takes_a_path(tmp_path):
    with _project(tmp_path) as project:
        gold = tmp_path / "gold.csv"
        _humans(project).to_csv(gold, index=False)
        report = project.import_gold(gold)  # before: AttributeError ('PosixPath' object has no attribute 'units')
        assert (report.coders, report.annotations_added, report.seen_added) == (["ann", "ben"], 6, 8)
        stored = project.db.execute("SELECT source FROM imports WHERE kind = 'gold'").fetchone()[0]
        assert stored == "gold.csv"


def test_corpus_and_human_codes_from_a_dataset(tmp_path):
    datasets = need("datasets")
    pd = need("pandas")
    (tmp_path / "cb.yaml").write_text(CODEBOOK)
    with Project.init(tmp_path / "proj") as project:
        corpus = datasets.Dataset.from_dict({"respondent": ["r1", "r2", "r3"], "answer": TEXTS[:3], "site": ["A", "B", "A"]})
        report = project.import_corpus(corpus, id_columns=["respondent"], name="survey")
        assert (report.documents_added, report.segments_added) == (3, 3)
        segs = project.segments()
        assert [s.text for s in segs] == TEXTS[:3]
        meta = json.loads(project.db.execute("SELECT metadata FROM documents WHERE id = ?", (segs[1].document_id,)).fetchone()[0])
        assert meta["site"] == "B" and meta["respondent"] == "r2" and meta["source"] == "survey.parquet"
        project.import_codebook(tmp_path / "cb.yaml")
        # human codes keyed by the respondent (a one-segment document's key), as a Dataset in the wide layout
        codes = datasets.Dataset.from_pandas(pd.DataFrame({"respondent": ["r1", "r2", "r3"],
                                                           "ann": ["safety", "workload", "safety;workload"]}))
        report = project.import_gold(codes, "wide", unit_columns=("respondent",))
        assert (report.coders, report.annotations_added) == (["ann"], 4)
        # the same import again changes nothing; a bad row names the table and its row
        assert project.import_gold(codes, "wide", unit_columns=("respondent",)).unchanged == 3
        bad = pd.DataFrame({"segment_id": [segs[0].id, "nope"], "coder": ["cy", "cy"], "code": ["safety", "safety"]})
        with pytest.raises(Exception, match=r"dataframe:2: unknown segment 'nope'"):
            project.import_gold(bad)
        assert project.db.execute("SELECT count(*) FROM annotations WHERE coder = 'cy'").fetchone()[0] == 0


def test_dataframe_corpus_with_mixed_types_is_one_clear_error(tmp_path):
    pd = need("pandas")
    with Project.init(tmp_path / "proj") as project:
        frame = pd.DataFrame({"text": ["a", "b"], "age": [3, "three"]})
        with pytest.raises(Exception, match="cannot be stored as a table"):
            project.import_corpus(frame)
        assert project.counts()["documents"] == 0


# -- item 13: code, evaluate, queue_review, export -----------------------------------------------------------------
def test_the_loop_in_python(tmp_path):
    pd = need("pandas")
    need("datasets")
    with _project(tmp_path) as project:
        project.import_gold(_humans(project))
        run = project.code("MOCK", "keywords")  # provider names are case-insensitive, as in the CLI
        assert run.run_id == 1 and run.coder == "run1:keywords:deductive@1" and run.counts["ok"] == 4
        assert run.exit_status == 0
        # resuming is free, as with the CLI
        again = project.code("mock", "keywords")
        assert again.result.already_finished and again.run_id == 1
        result = project.evaluate(n_boot=50)
        overall = result.overall
        assert {"comparison", "coders", "statistic", "value", "lo", "hi", "n_units"} <= set(overall.columns)
        assert "humans (ceiling)" in set(overall["comparison"])
        assert f"{run.coder} vs ann" in set(overall["comparison"])
        finite = overall.dropna(subset=["value", "lo", "hi"])
        assert len(finite) > 0 and ((finite["lo"] <= finite["value"] + 1e-9) & (finite["value"] <= finite["hi"] + 1e-9)).all()
        assert set(result.per_code["code"]) == {"safety", "workload"}
        assert {"precision", "recall", "f1", "lo", "hi"} <= set(result.per_code.columns)
        unit = result.per_unit.set_index("unit")
        third = project.segments()[2].id
        assert unit.loc[third, "ann"] == "safety" and unit.loc[third, "ben"] == "workload"
        assert unit.loc[third, run.coder] == "safety;workload" and not unit.loc[third, "agree"]
        assert result.report["meta"]["n_units"] == 4
        # recorded into the same history as `assistcode eval`
        assert project.db.execute("SELECT count(*) FROM eval_history").fetchone()[0] == 1
        [queued] = project.queue_review(run, audit=1.0)
        assert queued.run == run.coder and queued.queued == 4
        assert project.queue_review(run.run_id)[0].already_queued == 4
        frame = project.export(runs=run)
        assert isinstance(frame, pd.DataFrame) and set(frame["coder"]) == {run.coder}
        ds = project.export(runs=[run], format="dataset")
        assert ds.num_rows == len(frame) == 5 and ds.column_names == list(frame.columns)
        assert sorted(c for c in ds["code"] if c) == ["safety", "workload", "workload"]
        matrix = project.export(tmp_path / "m.csv", matrix=True)
        assert list(pd.read_csv(tmp_path / "m.csv").columns) == list(matrix.columns)
        assert len(matrix) == 12  # ann, ben and the run, four segments each


def test_evaluate_with_nothing_to_compare_warns_and_returns_empty_frames(tmp_path):
    need("pandas")
    with Project.init(tmp_path / "empty") as project:
        with pytest.warns(UserWarning, match="nothing to compare: this project has no codebook"):
            result = project.evaluate()
        assert result.overall.empty and {"lo", "hi"} <= set(result.overall.columns)
    with _project(tmp_path) as project:
        with pytest.warns(UserWarning, match="nothing to compare: 0 coders"):
            result = project.evaluate()
        assert result.per_code.empty and result.per_unit.empty and "lo" in result.per_code.columns
        ann = _humans(project).iloc[:4]
        project.import_gold(ann)
        with pytest.warns(UserWarning, match=r"1 coder \(ann\)"):
            assert project.evaluate().overall.empty


def test_code_takes_the_cli_settings_and_refuses_unknown_ones(tmp_path):
    with _project(tmp_path) as project:
        with pytest.raises(Exception, match="unknown setting 'temprature'"):
            project.code("mock", "keywords", temprature=0.2)
        with pytest.raises(Exception, match="unknown provider 'mok'"):
            project.code("mok", "keywords")
        dry = project.code("mock", "keywords", dry_run=True, samples=3)
        assert dry.result.estimate["segments"] == 4 and dry.run_id is None


# -- issue 18: the interview defaults hold for the API and for RunConfig itself -------------------------------------
def _interview(tmp_path: Path) -> Project:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "i1.txt").write_text("Interviewer: What about safety?\nAna: Safety comes first here.\n"
                                   "Interviewer: And the workload?\nAna: The workload is heavy.\n")
    (tmp_path / "cb.yaml").write_text(CODEBOOK)
    project = Project.init(tmp_path / "proj")
    project.import_corpus([folder], segmenter_options={"interviewers": ("Interviewer",)})
    project.import_codebook(tmp_path / "cb.yaml")
    return project


def test_interview_defaults_apply_to_the_api(tmp_path):
    with _interview(tmp_path) as project:
        run = project.code("mock", "keywords")
        manifest = run.result.run.manifest
        assert manifest["selection"]["skip_roles"] == ["interviewer"] and manifest["selection"]["context_turns"] == 1
        assert run.counts["ok"] == 2  # Ana's two turns; the questions are context, never coded
        assert any("interviewer turns left uncoded" in n and "1 preceding turn" in n for n in run.notes), run.notes
        coded = {r[0] for r in project.db.execute("SELECT s.speaker FROM seen x JOIN segments s ON s.id = x.segment_id "
                                                  "WHERE x.coder = ?", (run.coder,))}
        assert coded == {"Ana"}
        every = project.code("mock", "keywords", skip_roles=["none"], context_turns=0)
        assert every.counts["ok"] == 4 and every.run_id == 2 and not every.notes


def test_run_config_defaults_are_the_cli_defaults(tmp_path):
    from assistcode.runs.engine import RunConfig, code_project

    config = RunConfig(provider="mock", model="keywords")
    assert config.context_turns is None and config.skip_roles is None  # before: 0 and (): no interview defaults
    with _interview(tmp_path) as project:
        result = code_project(project, config)
        assert result.run.manifest["selection"] == {"context_turns": 1, "skip_roles": ["interviewer"], "skip_speakers": []}


# -- item 13: `import assistcode` exposes the main names, lazily -----------------------------------------------------
HEAVY = ("pandas", "scipy", "datasets", "pydantic", "numpy", "yaml")


def test_import_assistcode_is_cheap_and_exposes_the_main_names():
    probe = ("import sys, assistcode; heavy = [m for m in %r if m in sys.modules]; print('HEAVY', heavy); "
             "names = [n for n in ('Project', 'Codebook', 'Segment', 'estimate', 'InputError', 'ProjectError', 'GoldError') "
             "if getattr(assistcode, n, None) is None]; print('MISSING', names); "
             "print('CODER', hasattr(assistcode, 'Coder'), hasattr(assistcode, 'Annotation'))" % (HEAVY,))
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout and "MISSING []" in r.stdout and "CODER False False" in r.stdout, r.stdout
    import assistcode
    from assistcode.agreement import estimate

    assert assistcode.estimate is estimate and assistcode.Project is Project
    assert {"Project", "Codebook", "Segment", "estimate", "AssistcodeError"} <= set(assistcode.__all__)
    with pytest.raises(AttributeError):
        assistcode.NoSuchName  # noqa: B018


@pytest.mark.parametrize("args", [["--version"], ["segments", "--format", "jsonl", "--project", "proj"]])
def test_the_cli_still_starts_without_pandas_scipy_or_datasets(tmp_path, args):
    _project(tmp_path).close()
    probe = ("import sys; from assistcode.cli import main; status = main(sys.argv[1:]); "
             "print('HEAVY', [m for m in %r if m in sys.modules], file=sys.stderr); sys.exit(status)" % (HEAVY[:4],))
    r = subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stderr, r.stderr


def test_estimate_is_public_with_its_interval():
    from assistcode.agreement import Estimate, estimate

    e = estimate("krippendorff_alpha", [[1, 2, 3, 3], [1, 2, 3, 1]], level="nominal", n_boot=200)
    assert isinstance(e, Estimate) and e.low <= e.value <= e.high and e.n_units == 4


# -- item 15: gold import and codebook storage live in gold.py and codebook.py ---------------------------------------
def test_gold_and_codebook_storage_leave_project_py():
    source = (ROOT / "assistcode" / "project.py").read_text()
    for table in ("annotations", "seen", "codebooks", "coders (", "imports"):
        assert not re.search(rf"INSERT[^\"]*INTO {re.escape(table)}", source), table
    from assistcode import gold

    assert inspect.signature(gold.import_adding_codes).parameters["project"].annotation == "Project"
    assert inspect.signature(gold.import_adding_codes).return_annotation == "tuple[GoldReport, list[str]]"
    assert "Any" not in str(inspect.signature(gold.new_codes).parameters["codebook"].annotation)


# -- docstring examples and the README's Python API run ---------------------------------------------------------------
@pytest.mark.parametrize("module", ["assistcode", "assistcode.project", "assistcode.frames", "assistcode.gold",
                                    "assistcode.agreement"])
def test_docstring_examples_run(module):
    need("pandas")
    need("datasets")
    m = importlib.import_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the coefficients warn on tiny examples; the figures are what is checked
        result = doctest.testmod(m, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {module}"


def test_readme_python_api_example_runs(tmp_path, monkeypatch):
    need("pandas")
    need("datasets")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block, "README's Python API section has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(block.group(1), "README.md (Python API)", "exec"), namespace)  # noqa: S102
    assert namespace["run"].counts["ok"] == 3
    assert {"lo", "hi"} <= set(namespace["result"].overall.columns)
    assert namespace["codes"].num_rows >= 3
    namespace["project"].close()


# -- item 16: the module map names every module, and README links it --------------------------------------------------
def test_architecture_map_names_every_module_and_readme_links_it():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "corpus -> segments -> codebook -> prompts -> provider -> runs -> evaluate -> review -> export" in doc
    package = ROOT / "assistcode"
    names = [f"`{p.name}/`" for p in package.iterdir() if (p / "__init__.py").exists()]
    names += [f"`{p.name}`" for p in package.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    missing = [n for n in names if n not in doc]
    assert not missing, f"docs/architecture.md does not place {missing}"
    layout = (ROOT / "README.md").read_text(encoding="utf-8").split("## Layout", 1)[1].split("\n## ", 1)[0]
    assert "docs/architecture.md" in layout

"""Evaluation suites end to end on a synthetic gold standard whose configurations differ by a known accuracy."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from assistcode.errors import InputError
from assistcode.project import Project
from assistcode.providers import base as providers
from assistcode.providers.mock import MockProvider
from assistcode.suites import load_suite

from ..conftest import need

CODES = ["alpha", "beta", "gamma"]


def _noisy(model: str):
    """Replies with the segment's true code (the word after 'topic') with the accuracy the model name gives."""
    accuracy = int(model.removeprefix("acc")) / 100

    def reply(messages: list[dict[str, str]]) -> str:
        user = messages[-1]["content"]
        text = re.findall(r'"""\n(.*?)\n"""', user, re.DOTALL)[-1]
        true = re.search(r"topic (\w+)", text).group(1)
        u = int(hashlib.sha256((model + text).encode()).hexdigest()[:8], 16) / 2**32
        code = true if u < accuracy else CODES[(CODES.index(true) + 1 + int(u * 10) % 2) % 3]
        return json.dumps({"codes": [{"code": code, "rationale": "r", "evidence": "", "confidence": 0.8}]})

    return reply


@pytest.fixture(autouse=True)
def noisy_provider():
    providers.register("noisy", lambda model, **kw: MockProvider(model=model, default=_noisy(model)))
    yield
    providers._REGISTRY.pop("noisy", None)


def gold_standard(folder: Path, docs: int = 60, per_doc: int = 3) -> Path:
    """Documents of a few paragraphs, each about one topic; two human coders (h2 disagrees now and then)."""
    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    rows = ["unit,coder,code"]
    for d in range(docs):
        paras = []
        for k in range(per_doc):
            code = CODES[(d * per_doc + k) % 3 if (d + k) % 4 else (d % 3)]
            paras.append(f"Paragraph {k} of interview {d}: the topic {code} is discussed at length here.")
            h2 = code if (d * 7 + k) % 10 else CODES[(CODES.index(code) + 1) % 3]
            rows += [f"doc{d:03d}.txt#{k},h1,{code}", f"doc{d:03d}.txt#{k},h2,{h2}"]
        (corpus / f"doc{d:03d}.txt").write_text("\n\n".join(paras) + "\n", encoding="utf-8")
    (folder / "codebook.yaml").write_text(yaml.safe_dump({"name": "topics", "codes": [
        {"id": c, "name": c, "definition": f"The paragraph is about {c}."} for c in CODES]}))
    return corpus, rows


def build(tmp_path: Path, run) -> Path:
    """The gold standard as a folder with gold.yaml; its units named by segment id after a throwaway import."""
    folder = tmp_path / "gold"
    corpus, rows = gold_standard(folder)
    # segment ids are content hashes: find them by importing once
    scratch = Project.init(tmp_path / "scratch")
    scratch.import_corpus([corpus], segmenter="paragraph")
    ids = {}
    for seg in scratch.segments():
        title = scratch.db.execute("SELECT title FROM documents WHERE id = ?", (seg.document_id,)).fetchone()[0]
        ids[f"{title}.txt#{seg.position}"] = seg.id
    scratch.close()
    lines = ["segment_id,coder,code"] + [f"{ids[r.split(',')[0]]},{r.split(',', 1)[1]}" for r in rows[1:]]
    (folder / "annotations.csv").write_text("\n".join(lines) + "\n")
    (folder / "gold.yaml").write_text(yaml.safe_dump({
        "name": "topics", "corpus": "corpus", "segmenter": "paragraph", "codebook": "codebook.yaml",
        "annotations": [{"file": "annotations.csv", "layout": "long"}]}))
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "topics", "gold": {"standard": "gold"}, "split": {"test": 0.5, "seed": 1},
        "grid": {"template": ["deductive"], "model": [{"provider": "noisy", "model": "acc95"},
                                                      {"provider": "noisy", "model": "acc50"}],
                 "examples": [0, 2]},
        "floor": None, "n_boot": 300}))
    return suite


def test_run_report_history(tmp_path: Path, run) -> None:
    suite = build(tmp_path, run)
    project = tmp_path / "sp"
    r = run("suite", "run", suite, "--project", project)
    assert r.code == 0, r.err
    assert "4 configurations" in r.out and " 0 model calls now" not in r.out
    again = run("suite", "run", suite, "--project", project)
    assert again.code == 0 and "4 configurations, 0 model calls now" in again.out  # a finished suite calls nothing
    rep = run("suite", "report", suite, "--project", project, "--output", tmp_path / "out")
    assert rep.code == 0, rep.err
    assert "Paired differences" in rep.out and "humans (ceiling)" in rep.out
    result = json.loads((tmp_path / "out" / "report.json").read_text())
    by = {c["label"]: c for c in result["configurations"]}
    good, bad = by["acc95 / deductive"], by["acc50 / deductive"]
    assert good["alpha"]["value"] > bad["alpha"]["value"] + 0.2
    assert good["units"] == result["units"] == 90  # the test half of 60 documents x 3 paragraphs
    pair = next(p for p in result["paired"] if {p["a"], p["b"]} == {"acc95 / deductive", "acc50 / deductive"})
    assert pair["distinguishable"] and (pair["value"] > 0) == (pair["a"] == "acc95 / deductive")
    assert pair["value"] == pytest.approx(good["alpha"]["value"] - bad["alpha"]["value"], abs=1e-12)
    assert result["ceiling"]["value"] is not None
    assert result["pareto"]["axis"] == "seconds_per_segment"
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Agreement with the gold against" in html and html.count("<svg") == 2
    assert (tmp_path / "out" / "report.md").read_text().startswith("# assistcode suite topics")
    run("suite", "report", suite, "--project", project, "--output", tmp_path / "out")
    hist = json.loads(run("suite", "history", suite, "--project", project, "--json").out)
    assert len(hist) == 2 and hist[0]["alpha"] == hist[1]["alpha"]
    assert hist[0]["templates"]["acc95 / deductive"]["name"] == "deductive"


def test_few_shot_examples_never_come_from_test_units(tmp_path: Path, run) -> None:
    suite = build(tmp_path, run)
    project = tmp_path / "sp"
    assert run("suite", "run", suite, "--project", project).code == 0
    from assistcode.suites.runner import split

    s = load_suite(suite)
    with Project(project) as p:
        train, test = split(p, s)
        assert set(train).isdisjoint(test) and len(test) == 90
        docs = dict(p.db.execute("SELECT id, document_id FROM segments"))
        assert {docs[x] for x in train}.isdisjoint({docs[x] for x in test})  # split by document
        used = []
        for (manifest,) in p.db.execute("SELECT manifest FROM runs"):
            m = json.loads(manifest)
            used += m["examples"]["segments"]
            assert m["corpus"]["segments"] == 90  # only the test units are coded
        assert used and set(used) <= set(train)


def test_a_bad_suite_names_the_file_key_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngold: {standard: seed}\ngrid:\n  model: [{provider: mock, model: m}]\n  tempreature: [0.1]\n")
    with pytest.raises(InputError, match=r"bad.yaml:5.*grid.tempreature.*unknown key"):
        load_suite(bad)
    bad.write_text("name: x\ngold: {standard: seed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_suite(bad)


def test_shipped_suites_are_valid() -> None:
    from assistcode.inductive.suite import is_inductive, load_inductive_suite

    root = Path(__file__).resolve().parents[2] / "eval" / "suites"
    names = {(load_inductive_suite(p) if is_inductive(p) else load_suite(p)).name for p in root.glob("*.yaml")}
    assert names == {"seed", "convabuse", "games-as-art"}


@pytest.mark.slow
def test_the_shipped_seed_suite_runs_offline_and_reports(tmp_path: Path) -> None:
    """The acceptance run: both local models and the similarity floor on the seed gold standard, then the report,
    then the run again with no model call (a few minutes on a laptop CPU)."""
    need("llama_cpp")
    need("onnxruntime")
    import subprocess
    import sys

    suite = Path(__file__).resolve().parents[2] / "eval" / "suites" / "seed.yaml"
    cmd = [sys.executable, "-m", "assistcode", "suite"]
    first = subprocess.run([*cmd, "run", str(suite), "--project", str(tmp_path / "p")], capture_output=True, text=True,
                           timeout=1500)
    # 0, or 3 where the 135M model's replies failed some segments (exit statuses: README, Reliability)
    assert first.returncode in (0, 3) and "Traceback" not in first.stderr, first.stderr[-2000:]
    assert "failed across the configurations" in first.stderr or first.returncode == 0
    report = subprocess.run([*cmd, "report", str(suite), "--project", str(tmp_path / "p")], capture_output=True,
                            text=True, timeout=600)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "qwen2.5-coder-1.5b / deductive" in report.stdout and "similarity (floor)" in report.stdout
    for name in ("report.md", "report.html", "report.json"):
        assert (tmp_path / "p" / name).exists()
    again = subprocess.run([*cmd, "run", str(suite), "--project", str(tmp_path / "p")], capture_output=True, text=True,
                           timeout=600)
    assert "3 configurations, 0 model calls now" in again.stdout

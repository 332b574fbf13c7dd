import json

from assistcode.providers.mock import MockProvider
from assistcode.runs.engine import RunConfig, code_project


def test_code_runs_and_prompts_commands(run, coded_project):
    proj = coded_project.path
    r = run("code", "--provider", "mock", "--model", "kw", "--template", "deductive-batch", "--batch-size", "5", "--project", proj)
    assert r.code == 0 and "Ran run1:kw:deductive-batch@1: 24 coded, 0 failed; 5 calls" in r.out
    r = run("code", "--provider", "mock", "--model", "kw", "--template", "deductive-batch", "--batch-size", "5", "--project", proj)
    assert "already finished" in r.out and "no call made" in r.out
    r = run("code", "--provider", "mock", "--model", "kw", "--dry-run", "--price", "2.5,10", "--project", proj)
    assert "Dry run: 24 segments in 24 calls" in r.out and "$" in r.out
    listing = json.loads(run("runs", "list", "--json", "--project", proj).out)
    assert listing[0]["ok"] == 24 and listing[0]["status"] == "finished"
    shown = json.loads(run("runs", "show", "1", "--project", proj).out)
    assert shown["manifest"]["template"]["name"] == "deductive-batch" and shown["failed"] == []
    # a run is a coder that eval compares directly
    r = run("eval", "--project", proj, "--n-boot", "50", "--json")
    assert r.code == 2 and "only 1 coder" in r.err  # the run alone: nothing to compare yet
    assert "deleted" in run("runs", "delete", "1", "--project", proj).out.lower()
    assert json.loads(run("runs", "list", "--json", "--project", proj).out) == []
    assert "deductive-cot" in run("prompts", "list").out
    rendered = run("prompts", "render", "deductive", "--project", proj)
    assert "CODEBOOK: Test codebook" in rendered.out and '"""' in rendered.out


def test_model_run_against_humans_in_eval(run, coded_project, tmp_path):
    segs = coded_project.segments()
    rows = ["segment_id,coder,code"] + [f"{s.id},ann,{'safety' if 'safety' in s.text else ''}" for s in segs]
    (tmp_path / "g.csv").write_text("\n".join(rows) + "\n")
    assert run("import-gold", tmp_path / "g.csv", "--project", coded_project.path).code == 0
    code_project(coded_project, RunConfig(provider="mock", model="kw"), provider=MockProvider("kw"))
    r = run("eval", "--project", coded_project.path, "--n-boot", "50", "--json")
    result = json.loads(r.out)
    comp = result["overall"][0]
    assert comp["comparison"] == "run1:kw:deductive@1 vs ann"
    per = {row["code"]: row for row in result["per_code"]}
    assert per["safety"]["precision"] == 1.0 and per["safety"]["recall"] == 1.0


def test_candidates_group_and_merge(run, coded_project):
    names = iter(["Staff burnout", "burnout of staff", "Budget pressure"] * 20)
    provider = MockProvider("m", default=lambda m: json.dumps({"candidates": [
        {"name": next(names), "definition": "what it covers", "evidence": "safety", "confidence": 0.6}]}))
    code_project(coded_project, RunConfig(provider="mock", model="m", template="inductive"), provider=provider)
    out = run("codebook", "candidates", "--project", coded_project.path).out
    assert out.startswith("group 1 (16):") and "Budget pressure" in out
    r = run("codebook", "candidates", "--merge", "1,2", "--as", "Staff burnout", "--project", coded_project.path)
    assert "Added 'staff-burnout'" in r.out
    cb = coded_project.codebook()
    assert cb.by_id["staff-burnout"].examples == ("safety",) and len(coded_project.codebook_versions()) == 2
    r = run("codebook", "candidates", "--merge", "3", "--as", "Staff burnout", "--project", coded_project.path)
    assert r.code == 2 and "already has a code 'staff-burnout'" in r.err

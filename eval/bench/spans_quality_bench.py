"""Span agreement of a model with the researchers, beside its segment-level agreement (issue 16).

Data: LLMCode's games-as-art ``experience`` answers (``bopp_test_coded_texts.csv``) with the researchers' inline
span codes (``**stretch**<sup>code; code</sup>``) and their codebook (``bopp_test_code_descriptions.csv``). Each
answer is one document and one segment. The researchers' stretches are placed in the answer (the coded text without
its markup, aligned with the answer: their copy fixes a few typos) and imported as span codings
(``import-gold --format spans``), and the union of their codes per answer as their segment-level codes. The model codes every answer with the ``span`` template (one or more exact
quotes per code); its located quotes are its spans, its codes its segment-level codes.

Reported, model vs researchers (one coding team: no human ceiling):
- segment level: Krippendorff's alpha (MASI) on code sets, and per code Cohen's kappa and alpha, with intervals;
- span level: u-alpha, c|u-alpha, Cu-alpha, and per code |u-alpha and span F1 (IoU 0.5), with intervals
  (bootstrap over answers).

    python eval/bench/spans_quality_bench.py DATA_DIR [--provider local|mock] [--model M] [--limit N]
        [--n-boot 1000] [--work DIR] [--out eval/bench/results/spans_quality.json]

``--work DIR`` keeps the project: an interrupted model run resumes there (the engine's cache and settled segments).
"""
from __future__ import annotations

import argparse
import csv
import difflib
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _report import emit  # noqa: E402

from assistcode.evaluate import EvalOptions, evaluate, from_store  # noqa: E402
from assistcode.evaluate.spans import SpanEvalOptions, eval_spans  # noqa: E402
from assistcode.gold import GoldRow, GoldTable  # noqa: E402
from assistcode.model import Code, Codebook  # noqa: E402
from assistcode.project import Project  # noqa: E402
from assistcode.readers import ReadOptions  # noqa: E402
from assistcode.refi.qde import slug  # noqa: E402
from assistcode.runs.engine import RunConfig, code_project  # noqa: E402
from assistcode.spans import import_span_file  # noqa: E402

TEXTS = "bopp_test_coded_texts.csv"
CODES = "bopp_test_code_descriptions.csv"
INLINE = re.compile(r"\*\*((?:(?!\*\*).)+?)\*\*<sup>(.*?)</sup>", re.DOTALL)
HUMAN = "researchers"


def inline_spans(coded: str, text: str) -> list[tuple[int, int, list[str]]]:
    """The researchers' stretches as offsets in ``text``: found in the coded text with its markup removed, then
    carried over to ``text`` by aligning the two (the researchers fixed a few typos and spaces in their copy), so a
    stretch that occurs twice lands where they marked it."""
    plain, marks, last = [], [], 0
    for m in INLINE.finditer(coded):
        plain.append(coded[last:m.start()])
        start = sum(map(len, plain))
        plain.append(m.group(1))
        marks.append((start, start + len(m.group(1)), [c.strip() for c in m.group(2).split(";") if c.strip()]))
        last = m.end()
    plain.append(coded[last:])
    flat = "".join(plain)
    where = list(range(len(flat) + 1))  # offset in flat -> offset in text
    for tag, a0, a1, b0, b1 in difflib.SequenceMatcher(None, flat, text, autojunk=False).get_opcodes():
        for i in range(a0, a1 + 1):
            where[i] = b0 + (i - a0 if tag == "equal" else min(i - a0, b1 - b0))
    return [(where[s], where[e], codes) for s, e, codes in marks if where[e] > where[s]]


def read_data(folder: Path, limit: int | None) -> tuple[list[dict], Codebook, dict[str, str]]:
    """Answers (text, [(start, end, code names)]), the codebook, and code name -> id."""
    with (folder / CODES).open(encoding="utf-8", newline="") as fh:
        entries = [r for r in csv.DictReader(fh) if r["code"].strip()]
    taken: set[str] = set()
    ids = {r["code"].strip(): slug(r["code"].strip(), taken) for r in entries}
    codebook = Codebook("games as art (LLMCode)", tuple(Code(ids[r["code"].strip()], r["code"].strip(),
                                                             r["description"].strip()) for r in entries))
    with (folder / TEXTS).open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["text"].strip()]
    answers = []
    for r in rows[:limit] if limit else rows:
        answers.append({"text": r["text"], "marks": inline_spans(r["coded_text"], r["text"]),
                        "marked": len(INLINE.findall(r["coded_text"]))})
    return answers, codebook, ids


def build_project(work: Path, answers: list[dict], codebook: Codebook, ids: dict[str, str]) -> tuple[Project, dict]:
    """The answers as documents (one segment each), the codebook, the researchers' spans and segment codes."""
    if (work / "p").is_dir():
        return Project(work / "p"), {}
    work.mkdir(parents=True, exist_ok=True)
    table = work / "answers.csv"
    with table.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["answer", "text"])
        w.writerows([i, a["text"]] for i, a in enumerate(answers))
    project = Project.init(work / "p")
    project.import_corpus([table], segmenter="row", options=ReadOptions(text_column="text", id_columns=("answer",)))
    project.import_codebook(codebook)
    by_text = {r[1]: (r[0], r[2]) for r in project.db.execute(
        "SELECT d.id, d.text, s.id FROM documents d JOIN segments s ON s.document_id = d.id")}
    spans_file = work / "researchers_spans.csv"
    unknown = 0
    gold = GoldTable(str(work / "researchers_codes"), explicit_seen=True)
    with spans_file.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["document", "start", "end", "coder", "code"])
        for n, a in enumerate(answers):
            doc, seg = by_text[a["text"]]
            codes: set[str] = set()
            for start, end, names in a["marks"]:
                for name in names:
                    if name not in ids:
                        unknown += 1
                        continue
                    w.writerow([doc, start, end, HUMAN, ids[name]])
                    codes.add(ids[name])
            gold.rows += [GoldRow(seg, HUMAN, c, n + 2) for c in sorted(codes)] or [GoldRow(seg, HUMAN, None, n + 2)]
    span_report = import_span_file(project, spans_file)
    project.import_gold(gold)
    return project, {"spans": span_report.spans_added, "merged": span_report.merged,
                     "stretches_marked": sum(a["marked"] for a in answers),
                     "stretches_placed": sum(len(a["marks"]) for a in answers), "codes_not_in_codebook": unknown}


def _pick(estimates: list[dict], statistic: str) -> dict:
    e = next(e for e in estimates if e["statistic"] == statistic)
    return {"value": e["value"], "low": e["low"], "high": e["high"], "n_units": e["n_units"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help=f"the folder holding {TEXTS} and {CODES}")
    ap.add_argument("--provider", default="local", help="local (default) or mock (a check that the script runs)")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--limit", type=int, help="only the first N answers (a quick check)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--max-tokens", type=int, default=600)
    ap.add_argument("--work", type=Path, help="keep the project here and resume it (default: a temporary folder)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if not (args.data / TEXTS).is_file() or not (args.data / CODES).is_file():
        sys.exit(f"spans_quality_bench: {args.data} must hold {TEXTS} and {CODES} (LLMCode's test_data/games_as_art, "
                 "github.com/PerttuHamalainen/LLMCode, MIT)")
    answers, codebook, ids = read_data(args.data, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        project, reference = build_project(work, answers, codebook, ids)
        t0 = time.perf_counter()

        def progress(state: dict) -> None:
            if state.get("phase") or state["done"] % 10 == 0:
                print(f"[{time.perf_counter() - t0:7.0f}s] {state['done']}/{state['total']} answers, "
                      f"{state.get('failed', 0)} failed", file=sys.stderr, flush=True)

        run = code_project(project, RunConfig(provider=args.provider, model=args.model, template="span",
                                              max_tokens=args.max_tokens, concurrency=1), progress=progress)
        seconds = time.perf_counter() - t0
        coder = run.run.coder
        cb = project.codebook()
        seg = evaluate(from_store(project.db, [coder, HUMAN], cb), EvalOptions(n_boot=args.n_boot, reference=HUMAN))
        spans = eval_spans(project.db, cb, [coder, HUMAN], SpanEvalOptions(n_boot=args.n_boot, reference=HUMAN))
        counts = run.counts
        n_model_spans = project.db.execute("SELECT count(*) FROM span_codings WHERE coder = ?", (coder,)).fetchone()[0]
        project.close()
    seg_overall = seg["overall"][-1]["estimates"]
    span_overall = spans["overall"][-1]["estimates"]
    per_code = {}
    for row in seg["per_code"]:
        per_code.setdefault(row["code"], {})["segment_kappa"] = _pick(row["estimates"], "cohen_kappa")
        per_code[row["code"]]["segment_f1"] = row.get("f1")
    for row in spans["per_code"]:
        per_code.setdefault(row["code"], {})["span_binary_u_alpha"] = _pick(row["estimates"], "|u_alpha")
        per_code[row["code"]]["span_f1_iou_0.5"] = row.get("f1")
    result = {
        "data": f"{TEXTS} (LLMCode games-as-art, experience answers)", "answers": len(answers),
        "provider": args.provider, "model": args.model, "template": "span@1", "n_boot": args.n_boot,
        "reference": {"coder": HUMAN, **reference, "note": "one coding team: no human ceiling"},
        "model_run": {"coder": coder, "segments_ok": counts.get("ok"), "segments_failed": counts.get("failed"),
                      "spans": n_model_spans, "seconds": seconds, "seconds_per_answer": seconds / max(len(answers), 1),
                      "calls": run.calls, "cache_hits": run.cache_hits},
        "segment_level": {"masi_alpha": _pick(seg_overall, "krippendorff_alpha"),
                          "comparison": seg["overall"][-1]["comparison"]},
        "span_level": {k: _pick(span_overall, k) for k in ("u_alpha", "cu_alpha", "Cu_alpha")},
        "per_code": per_code,
        "notes": seg["notes"] + spans["notes"],
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()

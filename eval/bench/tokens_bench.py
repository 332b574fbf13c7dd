"""Tokens per coded segment (prompt plus completion, OpenAI's o200k tokenizer, offline) on the seed gold standard,
for three ways of prompting:

- ``deductive-batch`` with batches of 10 segments (the codebook prefix shared by 10 segments);
- ``deductive``: one call per segment, every code at once;
- one call per segment *per code* (a yes/no question about one code at a time, as some tools prompt), built here
  from the same codebook wording.

Completions are the replies a coder would give: the gold codes, each with a rationale (the first 20 words of the
segment) and an evidence quote (its first 12 words), as JSON in each prompt's own reply shape.

    python eval/bench/tokens_bench.py [--json eval/bench/results/tokens.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402

from assistcode import gold_standards  # noqa: E402
from assistcode.project import Project  # noqa: E402
from assistcode.prompts import codebook_context, get_template  # noqa: E402
from assistcode.runs.pricing import count_message_tokens, count_tokens  # noqa: E402

PER_CODE_SYSTEM = """You are a careful qualitative researcher coding interview transcripts.
Decide whether one code applies to the segment.

CODE: {id}
name: {name}
definition: {definition}
include when: {include}
exclude when: {exclude}

Reply with JSON only: {{"applies": true or false, "rationale": "<one or two sentences>", "evidence": "<a short quote copied exactly from the segment>", "confidence": <0 to 1>}}"""


def words(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        project = Project.init(Path(tmp) / "p")
        gold_standards.load_into(project, "leadership-quality-safety")
        codebook = project.codebook()
        segments = project.segments()
        gold = {}
        for seg_id, code in project.db.execute("SELECT segment_id, code FROM annotations"):
            gold.setdefault(seg_id, []).append(code)
    ctx = {"codes": codebook_context(codebook), "codebook_name": codebook.name, "examples": []}

    def coded(seg) -> list[dict]:  # noqa: ANN001
        return [{"code": c, "rationale": words(seg.text, 20), "evidence": words(seg.text, 12), "confidence": 0.9}
                for c in gold.get(seg.id, [])]

    single = get_template("deductive")
    batch = get_template("deductive-batch")
    totals = {"batch": 0, "one call per segment": 0, "one call per segment per code": 0}
    for seg in segments:
        seg_ctx = {"id": seg.id, "text": seg.text, "speaker": seg.speaker}
        rendered = single.render(segment=seg_ctx, **ctx)
        totals["one call per segment"] += count_message_tokens(list(rendered.messages)) + count_tokens(json.dumps({"codes": coded(seg)}))
        for code in codebook.codes:
            messages = [{"role": "system", "content": PER_CODE_SYSTEM.format(**code.as_dict())},
                        {"role": "user", "content": f'Segment:\n"""\n{seg.text}\n"""'}]
            applies = code.id in gold.get(seg.id, [])
            reply = {"applies": applies, "rationale": words(seg.text, 20), "evidence": words(seg.text, 12) if applies else "",
                     "confidence": 0.9}
            totals["one call per segment per code"] += count_message_tokens(messages) + count_tokens(json.dumps(reply))
    for i in range(0, len(segments), args.batch_size):
        group = segments[i:i + args.batch_size]
        # exactly as the engine renders a batch: segments named 1..n
        rendered = batch.render(segments=[{"id": str(j + 1), "text": s.text, "speaker": s.speaker} for j, s in enumerate(group)], **ctx)
        reply = {"segments": [{"segment_id": str(j + 1), "codes": coded(s)} for j, s in enumerate(group)]}
        totals["batch"] += count_message_tokens(list(rendered.messages)) + count_tokens(json.dumps(reply))
    n = len(segments)
    per_segment = {k: v / n for k, v in totals.items()}
    result = {"segments": n, "codes": len(codebook), "batch_size": args.batch_size, "tokenizer": "o200k_base",
              "tokens_per_coded_segment": per_segment,
              "batch_vs_per_code": per_segment["batch"] / per_segment["one call per segment per code"],
              "batch_vs_per_segment": per_segment["batch"] / per_segment["one call per segment"],
              "target": "batch <= 1/5 of one call per segment per code"}
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

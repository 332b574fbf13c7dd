"""Build gold_standard/leadership-quality-safety/ from the seed paper (../shared/seed).

Kept for provenance: it shows exactly how each quote, attribution and theme was taken from the paper. The paper is
not in this repository; the built files are. Run from the repository root:

    python scripts/build_seed_gold.py ../shared/seed/mckee-2013-leadership-quality-safety.md
"""
from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

OUT = Path("gold_standard/leadership-quality-safety")
THEMES = {
    "Leadership at every level as essential to patient safety and quality": "every-level",
    "Challenges of distributed leadership: national level": "national-level",
    "Challenges of distributed leadership: organisations": "organisations",
}
# Attribution as printed -> participant id. The paper is not consistent; this table is the documented mapping.
PARTICIPANTS = {
    "KC010": "KC010", "KC011": "KC011", "KC009": "KC009", "KC 009": "KC009", "JW 045": "JW045",
    "JW031": "JW031", "JW 036": "JW036", "JW19": "JW019", "JW019": "JW019", "JW056": "JW056",
    "JW028": "JW028", "JW002": "JW002", "KC003": "KC003", "JW046": "JW046", "KC006": "KC006",
}
# Quotes whose role is not printed beside them: taken from the sentence that introduces the quote.
ROLE_FROM_TEXT = {"JW046": "Head of patient safety (trust)"}
ATTR = re.compile(r"\*?\s*(?P<role>[^()*'’]*?)\s*\((?P<code>(?:JW|KC) ?\d+)\)\.?\*?\s*$")
UNATTRIBUTED = [
    ("it's in everybody's title ... we are all in it", "every-level"),
    ("well, aren't [we] all leaders, leading it; isn't that our day job?", "every-level"),
]


def main(paper: Path) -> None:
    lines = paper.read_text(encoding="utf-8").splitlines()
    theme = None
    quotes = []
    for i, line in enumerate(lines):
        heading = re.match(r"^###\s+\**(.+?)\**$", line)
        if heading:
            theme = THEMES.get(heading.group(1).strip("* "))
            continue
        if theme is None or not line.startswith(("*'", "*‘")):
            continue
        a = ATTR.search(line)
        body = line[: a.start()] if a else line
        if a is None:
            a = ATTR.search(lines[i + 1])
        text = body.strip().strip("*").strip()
        text = re.sub(r"^['‘]", "", text)
        text = re.sub(r"['’]\.?\*?\s*\*?$", "", text.rstrip(" *"))
        role = a.group("role").strip(" *.")
        quotes.append({"theme": theme, "attribution": f"{role} ({a.group('code')})".strip(), "code": a.group("code"),
                       "role": role or ROLE_FROM_TEXT[PARTICIPANTS[a.group("code")]], "text": text, "line": i + 1})
    for n, (text, theme) in enumerate(UNATTRIBUTED, start=1):
        quotes.append({"theme": theme, "attribution": "(unattributed)", "code": f"U{n}", "role": "",
                       "text": text, "line": next(i + 1 for i, l in enumerate(lines) if text in l)})
    PARTICIPANTS.update({"U1": "UNATTRIBUTED-1", "U2": "UNATTRIBUTED-2"})

    (OUT / "transcripts").mkdir(parents=True, exist_ok=True)
    by_participant: dict[str, list[dict]] = {}
    for q in quotes:
        q["participant_id"] = PARTICIPANTS[q["code"]]
        by_participant.setdefault(q["participant_id"], []).append(q)
    for pid, qs in by_participant.items():
        (OUT / "transcripts" / f"{pid}.txt").write_text("\n\n".join(q["text"] for q in qs) + "\n", encoding="utf-8")
    with (OUT / "quotes.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["quote", "participant_id", "attribution_as_printed", "role_as_printed", "theme", "paper_line", "text"])
        for n, q in enumerate(quotes, start=1):
            w.writerow([n, q["participant_id"], q["attribution"], q["role"], q["theme"], q["line"], q["text"]])
    with (OUT / "participants.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "participant_id", "attributions_as_printed", "roles_as_printed"])
        for pid, qs in by_participant.items():
            w.writerow([f"{pid}.txt", pid, "; ".join(dict.fromkeys(q["attribution"] for q in qs)),
                        "; ".join(dict.fromkeys(q["role"] for q in qs if q["role"]))])
    # The annotations name segments by id, exactly as `assistcode import --segment paragraph` derives them.
    sys.path.insert(0, ".")
    from assistcode.model import Document
    from assistcode.segmenters import segment

    with (OUT / "annotations.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["segment_id", "coder", "code", "participant_id", "quote"])
        for pid, qs in by_participant.items():
            text = (OUT / "transcripts" / f"{pid}.txt").read_text(encoding="utf-8")
            segs = segment(Document(text), "paragraph")
            assert [s.text for s in segs] == [q["text"] for q in qs], pid
            for seg, q in zip(segs, qs):
                w.writerow([seg.id, "McKee et al. 2013", q["theme"], pid, quotes.index(q) + 1])
    print(f"{len(quotes)} quotes from {len(by_participant)} participants")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

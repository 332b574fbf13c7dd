"""ConvAbuse (CC BY 4.0) as an assistcode project: one document per item (the user's turn; the turns before it are
kept as document metadata), one human coder per annotator, codes from ``eval/suites/convabuse/codebook.yaml``.

The data is read from where it lies (``--data DIR`` or ``$ASSISTCODE_CONVABUSE``: the folder holding
``ConvAbuseEMNLPfull.csv``, from https://github.com/amandacurry/convabuse) and never copied into the repository; what
this module writes goes to a folder the caller names (a temporary one in the benchmark; a git-ignored one for the
suite).

    python eval/convabuse.py --data DIR --project DIR [--sample 200]         # a project holding it
    python eval/convabuse.py --data DIR --gold-standard DIR [--sample 200]   # a gold standard folder for suites
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CODEBOOK = ROOT / "eval" / "suites" / "convabuse" / "codebook.yaml"
ITEM_COLUMNS = ["conv_id", "prev_agent", "prev_user", "agent", "user"]
LABELS = {
    "is_abuse.-1": "abusive", "is_abuse.-2": "abusive", "is_abuse.-3": "abusive",
    "type.ableism": "ableism", "type.homophobic": "homophobic", "type.intellectual": "intellectual",
    "type.racist": "racist", "type.sexist": "sexist", "type.sex_harassment": "sex-harassment",
    "type.transphobic": "transphobic", "target.generalised": "target-generalised",
    "target.individual": "target-individual", "target.system": "target-system",
    "direction.explicit": "explicit", "direction.implicit": "implicit",
}


SOURCE = "https://github.com/amandacurry/convabuse"
"""Where to get ConvAbuse (CC BY 4.0): ``ConvAbuseEMNLPfull.csv`` in its data folder."""


def data_dir() -> Path | None:
    """The folder named by ``$ASSISTCODE_CONVABUSE``, or None."""
    value = os.environ.get("ASSISTCODE_CONVABUSE")
    return Path(value) if value else None


@dataclass
class Prepared:
    items: Path
    gold: Path
    n_items: int
    repeats: int
    """(item, annotator) rows after the first: the authors' intra-annotator repeats, left out and counted."""
    majority_abusive: int
    sample: list[str] = field(default_factory=list)


def prepare(out: Path, *, sample: int | None = None, seed: int = 2021, source: Path | None = None) -> Prepared:
    """Write ``items.csv`` (item, user, context, bot) and ``gold.csv`` (item, coder, code; an empty code records an item
    seen and left uncoded). With ``sample``, keep a seeded sample stratified by the annotators' majority on
    ``abusive``: half abusive, half not (so that the rare labels have cases), noted in every result."""
    folder = source or data_dir()
    csv = folder / "ConvAbuseEMNLPfull.csv" if folder else None
    if csv is None or not csv.exists():
        raise SystemExit(f"ConvAbuse not found{f' at {csv}' if csv else ''}: download ConvAbuseEMNLPfull.csv from "
                         f"{SOURCE} and pass its folder with --data DIR or ASSISTCODE_CONVABUSE=DIR")
    rows = pd.read_csv(csv, dtype={"conv_id": str}, keep_default_na=False)
    rows["item"] = rows.groupby(ITEM_COLUMNS, sort=False).ngroup().map(lambda i: f"convabuse-{i:04d}")
    first = ~rows.duplicated(["item", "annotator_id"])
    repeats = int((~first).sum())
    rows = rows[first]
    labels = [c for c in LABELS if c in rows.columns]
    missing = set(LABELS) - set(labels)
    if missing:
        raise SystemExit(f"{csv}: columns missing: {', '.join(sorted(missing))}")
    abusive = rows[["is_abuse.-1", "is_abuse.-2", "is_abuse.-3"]].astype(int).sum(axis=1) > 0
    share = abusive.groupby(rows["item"]).mean()
    majority = share[share > 0.5].index
    items = rows.drop_duplicates("item")[["item", *ITEM_COLUMNS, "bot"]].reset_index(drop=True)
    chosen: list[str] = []
    if sample:
        rng = np.random.default_rng(seed)
        yes = items["item"][items["item"].isin(majority)].to_numpy()
        no = items["item"][~items["item"].isin(majority)].to_numpy()
        k = min(sample // 2, len(yes))
        chosen = sorted(rng.choice(yes, k, replace=False).tolist() + rng.choice(no, sample - k, replace=False).tolist())
        items = items[items["item"].isin(chosen)]
        rows = rows[rows["item"].isin(chosen)]
    out.mkdir(parents=True, exist_ok=True)
    items = items.assign(context=("agent: " + items.prev_agent + " | user: " + items.prev_user + " | agent: " + items.agent))
    items[["item", "user", "context", "bot"]].to_csv(out / "items.csv", index=False)
    long = []
    for rec in rows[["item", "annotator_id", *labels]].itertuples(index=False):
        codes = sorted({LABELS[col] for col, v in zip(labels, rec[2:]) if int(v) == 1})
        long.extend((rec[0], rec[1], c) for c in codes or [""])
    pd.DataFrame(long, columns=["item", "coder", "code"]).to_csv(out / "gold.csv", index=False)
    return Prepared(out / "items.csv", out / "gold.csv", len(items), repeats, int(len(set(majority) & set(items["item"]))), chosen)


def load_project(folder: Path, prepared: Prepared):
    """A new project holding the prepared items, the codebook and the annotators' codes."""
    from assistcode.gold import read_long
    from assistcode.project import Project
    from assistcode.readers import ReadOptions

    project = Project.init(folder)
    project.import_codebook(CODEBOOK)
    project.import_corpus([prepared.items], segmenter="paragraph",
                          options=ReadOptions(text_column="user", id_columns=("item",), meta_columns=("context", "bot")))
    project.import_gold(read_long(prepared.gold, unit_columns=("item",)))
    return project


def write_gold_standard(folder: Path, prepared: Prepared) -> Path:
    """A gold standard folder (``gold.yaml`` beside the prepared files) that ``assistcode`` loads like a shipped one."""
    import shutil

    import yaml

    shutil.copy(CODEBOOK, folder / "codebook.yaml")
    manifest = {"name": folder.name, "description": "ConvAbuse (Cercas Curry et al. 2021, CC BY 4.0): user turns "
                "coded by 2-7 expert annotators" + (f", seeded stratified sample of {len(prepared.sample)}"
                                                    if prepared.sample else ""),
                "corpus": prepared.items.name, "segmenter": "paragraph",
                "read_options": {"text_column": "user", "id_columns": ["item"], "meta_columns": ["context", "bot"]},
                "codebook": "codebook.yaml",
                "annotations": [{"file": prepared.gold.name, "layout": "long", "options": {"unit_columns": ["item"]}}]}
    (folder / "gold.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--project", type=Path)
    where.add_argument("--gold-standard", type=Path)
    p.add_argument("--sample", type=int)
    p.add_argument("--data", type=Path, help="The folder holding ConvAbuseEMNLPfull.csv (default: $ASSISTCODE_CONVABUSE).")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.gold_standard:
        prepared = prepare(args.gold_standard, sample=args.sample, source=args.data)
        write_gold_standard(args.gold_standard, prepared)
        print(f"{args.gold_standard}: gold standard of {prepared.n_items} items, {prepared.repeats} repeated ratings "
              "left out")
        return 0
    prepared = prepare(args.project / "convabuse-source", sample=args.sample, source=args.data)
    load_project(args.project, prepared).close()
    print(f"{args.project}: {prepared.n_items} items, {prepared.repeats} repeated ratings left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The log-probability path on a real llama.cpp model (SmolLM2, 93 MB): probabilities, prefix reuse, a whole run."""
from __future__ import annotations

import asyncio

import llama_cpp  # noqa: F401  (the local extra: a missing llama.cpp is an error here, not a skip)
import numpy as np
import pytest

from assistcode.localmodels import install_model
from assistcode.providers.base import CallOptions
from assistcode.providers.local import LocalProvider
from assistcode.runs import scores as sc
from assistcode.runs.engine import Engine, RunConfig, code_project

SMALL = "smollm2-135m"


@pytest.fixture(scope="module")
def small_model():
    return install_model(SMALL, echo=lambda line: None)


def _questions(project, seg):
    engine = Engine(project.db, project.codebook(), RunConfig(provider="local", model=SMALL, template="score-per-code"))
    return engine.scoring.questions({"id": seg.id, "text": seg.text, "speaker": seg.speaker})


def _lcp(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_yes_no_probabilities_and_prefix_reuse(small_model, coded_project):
    reuse = LocalProvider(model=SMALL, n_threads=2)
    fresh = LocalProvider(model=SMALL, n_threads=2, reuse_prefix=False)
    segs = coded_project.segments()[:2]
    first = _questions(coded_project, segs[0])
    asyncio.run(reuse.score(first[0], first[1], CallOptions()))
    questions, answers, _ = _questions(coded_project, segs[1])
    llm = reuse._llm
    held = list(llm.input_ids[:llm.n_tokens])
    tokens = [reuse._prompt_tokens(llm, q) for q in questions]
    got = asyncio.run(reuse.score(questions, answers, CallOptions()))
    for p in got.probs:
        assert set(p) == {"yes", "no"} and sum(p.values()) == pytest.approx(1.0, abs=1e-9) and 0 < p["yes"] < 1
    # the system prompt and codebook were held from the first segment; this segment is evaluated once, and each
    # question after the first costs only the tokens of the question itself
    expected = len(tokens[0]) - _lcp(held, tokens[0]) + sum(len(t) - _lcp(prev, t) for prev, t in zip(tokens, tokens[1:]))
    assert got.prompt_tokens == expected
    segment_start = _lcp(held, tokens[0])
    question_start = _lcp(tokens[0], tokens[1])
    assert question_start > segment_start + 5  # the segment lies in the shared part
    assert all(len(t) - _lcp(tokens[0], t) < 30 for t in tokens[1:])
    assert got.prompt_tokens < sum(len(t) for t in tokens) / 2
    alone = asyncio.run(fresh.score(questions, answers, CallOptions()))
    assert alone.prompt_tokens == sum(len(t) for t in tokens)
    for a, b in zip(got.probs, alone.probs):
        assert a["yes"] == pytest.approx(b["yes"], abs=1e-3)


def test_choice_letters_and_a_local_run(small_model, coded_project):
    ids = [s.id for s in coded_project.segments()[:3]]
    r = code_project(coded_project, RunConfig(provider="local", model=SMALL, template="score-choice"), segment_ids=ids)
    assert r.counts["ok"] == 3 and r.run.coder == f"run1:{SMALL}:score-choice@1"
    m = sc.load_scores(coded_project.db, r.run.id)
    assert m.raw.shape == (3, 3) and np.all((m.raw > 0) & (m.raw.sum(axis=1) <= 1 + 1e-9))
    tokens = coded_project.db.execute("SELECT sum(prompt_tokens), sum(completion_tokens) FROM run_segments").fetchone()
    assert tokens[0] > 0 and tokens[1] == 0

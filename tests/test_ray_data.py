"""Ray Data embeddings: ``similarity`` and ``trained`` with ``--executor ray``, on a local cluster (2 CPUs, one for the
whole module)."""
from __future__ import annotations

import json
import os
import random
import signal
import threading
import time

import numpy as np
import pytest

from assistcode.project import Project
from assistcode.providers.base import ProviderError
from assistcode.runs import store as rs
from assistcode.runs.ray_data import RayDataEmbedder, gather

from .conftest import need, seed_project, unavailable

SIMILARITY = "all-MiniLM-L6-v2-int8:similarity"
TRAINED = "all-MiniLM-L6-v2-int8+logreg:trained"


@pytest.fixture(scope="module")
def embedder():
    need("onnxruntime")
    need("tokenizers")
    from assistcode.similarity import Embedder

    try:
        e = Embedder()
        e.embed(["load the model once"])
        return e
    except Exception as exc:  # the extra is not installed, or the model fails to load: a skip here, a failure in CI
        unavailable(f"the similarity embedder does not load: {exc}")


@pytest.fixture(scope="module")
def ray_cluster(embedder):
    ray = need("ray", "the Ray executor (assistcode[ray])")
    need("ray.data", "Ray Data (assistcode[ray])")
    from assistcode.runs.ray_executor import connect

    connect(None)  # the local cluster every test here shares
    yield ray
    ray.shutdown()


def texts_of_many_lengths(n: int = 50, seed: int = 0) -> list[str]:
    """``n`` texts, each of another length: first the longest, past the model's 256-token window (cut into windows,
    and the slowest, so the first batch tends to come back last), then empty, one word, two... shuffled."""
    rng = random.Random(seed)
    words = ("the ward manager listened when nurses raised a concern about safety and the board asked for "
             "figures on falls every month while patients waited").split()
    lengths = list(range(n - 1))
    rng.shuffle(lengths)
    lengths = [600, *lengths]
    return [" ".join(rng.choice(words) for _ in range(k)) for k in lengths]


def test_gather_puts_each_vector_back_in_its_texts_place():
    vectors = np.arange(7 * 3, dtype=float).reshape(7, 3)
    batches = [{"index": np.array([5, 2]), "vector": vectors[[5, 2]]},
               {"index": np.array([6, 0, 3]), "vector": vectors[[6, 0, 3]]},
               {"index": np.array([4, 1]), "vector": vectors[[4, 1]]}]
    assert np.array_equal(gather(7, batches), vectors)
    with pytest.raises(ProviderError, match="5 of 7 embeddings"):
        gather(7, batches[:2])
    with pytest.raises(ProviderError, match="text 5 twice"):
        gather(7, [*batches, batches[0]])


def test_ray_data_embeddings_equal_the_in_process_ones_in_input_order(ray_cluster, embedder, monkeypatch):
    from assistcode.similarity import Embedder

    texts = texts_of_many_lengths()
    expected = embedder.embed(texts)
    # this process cannot embed any more: whatever comes back was embedded by the cluster's workers
    monkeypatch.setattr(Embedder, "embed", lambda self, texts, batch=64: pytest.fail("embedded in the driver"))
    ray_embedder = RayDataEmbedder(None)
    got = ray_embedder.embed(texts)
    assert got.shape == expected.shape == (50, 384)
    assert np.allclose(got, expected, atol=1e-5)  # each row its own text's vector: the texts all differ in length
    executor = ray_embedder.executor
    assert executor["name"] == "ray" and executor["via"] == "ray.data" and executor["workers"] == 2
    assert executor["texts"] == 50 and executor["batches"] >= 2  # the texts were spread over both actors


def _facts(project_dir, coder: str) -> tuple[dict, dict, np.ndarray, list[str]]:
    """A run's manifest, its proposals (segment, code) -> confidence, and its stored raw scores."""
    from assistcode.runs.scores import load_scores

    with Project(project_dir) as p:
        run = rs.get_run(p.db, coder)
        proposals = {(s, c): conf for s, c, conf in p.db.execute(
            "SELECT segment_id, code, confidence FROM annotations WHERE coder = ?", (coder,))}
        matrix = load_scores(p.db, run.id)
        order = np.lexsort((np.arange(len(matrix.segment_ids)), np.array(matrix.segment_ids)))
        return run.manifest, proposals, matrix.raw[order], [matrix.segment_ids[i] for i in order]


def _same_proposals(a: dict, b: dict) -> None:
    assert a and a.keys() == b.keys()
    for key, conf in a.items():
        assert conf == pytest.approx(b[key], abs=1e-5), key


def test_similarity_with_executor_ray_stores_what_this_process_stores(ray_cluster, run, tmp_path):
    here, there = seed_project(tmp_path / "here"), seed_project(tmp_path / "there")
    label = ("--calibrate-with", "McKee et al. 2013")
    assert run("code", "--provider", "similarity", *label, "--project", here).code == 0
    r = run("code", "--provider", "similarity", *label, "--executor", "ray", "--project", there)
    assert r.code == 0, r.err
    assert f"run1:{SIMILARITY}: 20 segments" in r.out
    m_here, p_here, raw_here, ids_here = _facts(here, f"run1:{SIMILARITY}")
    m_there, p_there, raw_there, ids_there = _facts(there, f"run1:{SIMILARITY}")
    _same_proposals(p_here, p_there)
    assert ids_here == ids_there and np.allclose(raw_here, raw_there, atol=1e-5)
    assert m_here["calibration"] == m_there["calibration"]
    assert "executor" not in m_here["provider"]
    executor = m_there["provider"]["executor"]
    assert executor["name"] == "ray" and executor["via"] == "ray.data" and executor["workers"] == 2
    assert executor["texts"] > 20  # the segments, the codes' descriptions and the content-free texts
    # the run's identity does not depend on where it was embedded: the same command finds it finished
    again = run("code", "--provider", "similarity", *label, "--project", there)
    assert "already finished" in again.out


def test_trained_with_executor_ray_stores_what_this_process_stores(ray_cluster, run, tmp_path):
    need("sklearn", "the trained provider (assistcode[similarity])")
    from .test_trained import topic_project

    here, there = topic_project(tmp_path / "here", n_docs=10), topic_project(tmp_path / "there", n_docs=10)
    assert run("code", "--provider", "trained", "--train-with", "A", "--project", here).code == 0
    r = run("code", "--provider", "trained", "--train-with", "A", "--executor", "ray", "--project", there)
    assert r.code == 0, r.err
    assert f"run1:{TRAINED}: 30 segments" in r.out
    m_here, p_here, raw_here, _ = _facts(here, f"run1:{TRAINED}")
    m_there, p_there, raw_there, _ = _facts(there, f"run1:{TRAINED}")
    _same_proposals(p_here, p_there)
    assert np.allclose(raw_here, raw_there, atol=1e-5)
    assert m_here["calibration"] == m_there["calibration"] and m_here["labels"] == m_there["labels"]
    executor = m_there["provider"]["executor"]
    assert executor["name"] == "ray" and executor["via"] == "ray.data" and executor["texts"] == 30


@pytest.mark.parametrize("provider, args", [("similarity", ()), ("trained", ("--train-with", "McKee et al. 2013"))])
def test_an_unreachable_ray_address_is_one_line_and_exit_2_and_nothing_is_stored(run, tmp_path, provider, args):
    proj = seed_project(tmp_path / "p")
    r = run("code", "--provider", provider, *args, "--executor", "ray", "--ray-address", "127.0.0.1:9",
            "--project", proj)
    assert r.code == 2
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot reach the Ray cluster at 127.0.0.1:9" in lines[0]
    listed = run("runs", "list", "--json", "--project", proj)
    assert listed.code == 0 and json.loads(listed.out) == []


def test_the_python_api_takes_the_executor_too(tmp_path):
    from assistcode.errors import InputError

    with Project(seed_project(tmp_path / "p")) as p:
        with pytest.raises(InputError, match="cannot reach the Ray cluster at 127.0.0.1:9"):
            p.code("similarity", executor="ray", ray_address="127.0.0.1:9")
        assert rs.list_runs(p.db) == []


def _busy_embedding_workers() -> list[int]:
    """The pids of Ray Data embedding actors embedding a batch now (their process title names the method)."""
    busy = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read()
        except OSError:
            continue
        if title.startswith(b"ray::MapWorker(MapBatches(_EmbedBatch)).") and b".__init__" not in title:
            busy.append(int(pid))
    return busy


def test_a_worker_killed_mid_batch_has_its_batch_embedded_again(ray_cluster, embedder):
    if not os.path.isdir("/proc"):
        pytest.skip("finds the workers through /proc")
    texts = texts_of_many_lengths(80, seed=1)
    expected = embedder.embed(texts)
    killed: list[int] = []
    finished = threading.Event()

    def kill_a_busy_worker() -> None:
        while not finished.is_set():
            busy = _busy_embedding_workers()
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    try:
        got = RayDataEmbedder(None).embed(texts)
    finally:
        finished.set()
        killer.join()
    assert killed  # a worker died with a batch in hand
    assert np.allclose(got, expected, atol=1e-5)  # and every text came back once, in its place


def test_workers_that_keep_dying_fail_the_run_with_one_line(ray_cluster):
    if not os.path.isdir("/proc"):
        pytest.skip("finds the workers through /proc")
    from assistcode.runs.ray_data import RESTARTS

    texts = texts_of_many_lengths(40, seed=2)
    killed: list[int] = []
    finished = threading.Event()

    def kill_every_busy_worker() -> None:
        while not finished.is_set():
            for pid in _busy_embedding_workers():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_every_busy_worker)
    killer.start()
    try:
        with pytest.raises(ProviderError, match="^Ray Data could not embed the texts: ") as raised:
            RayDataEmbedder(None).embed(texts)
    finally:
        finished.set()
        killer.join()
    assert len(killed) > RESTARTS and "\n" not in str(raised.value)

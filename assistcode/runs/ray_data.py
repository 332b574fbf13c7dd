"""Embeddings through Ray Data: with ``--executor ray`` the whole-run providers (``similarity``, ``trained``) have a
Ray cluster's workers embed the texts, each worker holding one :class:`~assistcode.similarity.Embedder`.

Only the embedding moves: the texts go out as a Ray dataset (``ray.data.from_items``), ``map_batches`` runs them
through a pool of embedding actors, and the vectors come back into the same matrix, in the same order, that
:meth:`Embedder.embed <assistcode.similarity.Embedder.embed>` gives in this process (each text carries its index;
Ray Data does not keep order). Scoring, calibration and every write to the store stay in the one process that
writes it. The cluster is reached as :func:`assistcode.runs.ray_executor.connect` reaches it: an address is checked
reachable first (one line, exit 2), and without one a local cluster of 2 CPUs is started.
"""
from __future__ import annotations

import logging
import math
import warnings
from typing import Any, Iterable, Sequence

import numpy as np

from ..providers.base import ProviderError
from .ray_executor import check_address, connect

BATCH_SIZE = 128
"""Texts per batch sent to an embedding actor, at most (fewer where that spreads the texts over every actor)."""
RESTARTS = 3
"""Times an embedding actor that dies is restarted (its batch embedded again); past that the run fails, one line."""


class _EmbedBatch:
    """One Ray Data actor: one embedder (on one thread, as the actor holds one CPU), embedding batches of texts."""

    def __init__(self) -> None:
        from ..similarity import Embedder

        self.embedder = Embedder(threads=1)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"index": batch["index"], "vector": self.embedder.embed([str(t) for t in batch["text"]])}


def gather(n: int, batches: Iterable[dict[str, np.ndarray]]) -> np.ndarray:
    """The ``n`` texts' vectors in input order, from batches of ``{"index", "vector"}`` in any order; every text
    exactly once, or a :class:`ProviderError`."""
    out: np.ndarray | None = None
    seen = np.zeros(n, bool)
    for batch in batches:
        index, vectors = np.asarray(batch["index"], dtype=np.int64), np.asarray(batch["vector"])
        if out is None:
            out = np.zeros((n, vectors.shape[1]))
        if seen[index].any() or len(np.unique(index)) < len(index):
            raise ProviderError(f"Ray Data returned text {int(index[seen[index]][0])} twice")
        out[index] = vectors
        seen[index] = True
    if out is None or not seen.all():
        raise ProviderError(f"Ray Data returned {int(seen.sum())} of {n} embeddings")
    return out


class RayDataEmbedder:
    """An :class:`~assistcode.similarity.Embedder` whose ``embed`` runs on a Ray cluster through Ray Data.

    The address is checked when it is made (before a run computes anything); the cluster is joined, or a local one
    started, only when something is to be embedded (a finished run embeds nothing)."""

    def __init__(self, address: str | None = None, workers: int | None = None, batch_size: int = BATCH_SIZE) -> None:
        check_address(address)
        self.address, self.workers, self.batch_size = address, workers, batch_size
        self.batches = 0
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length vectors of ``texts`` (rows in input order), embedded by a pool of Ray Data actors."""
        if not texts:
            return np.zeros((0, 384))
        ray = connect(self.address)
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # stderr stays the command's
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        if self.workers is None:
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        size = max(1, min(self.batch_size, math.ceil(len(texts) / self.workers)))
        blocks = math.ceil(len(texts) / size)
        items = [{"index": i, "text": t} for i, t in enumerate(texts)]
        dataset = ray.data.from_items(items, override_num_blocks=blocks)
        pool = ray.data.ActorPoolStrategy(size=min(self.workers, blocks))
        with warnings.catch_warnings():  # max_restarts is still the way to bound restarts in the pinned Ray (2.60);
            warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")  # it goes in Ray 2.64
            vectors = dataset.map_batches(_EmbedBatch, compute=pool, batch_size=size, batch_format="numpy", num_cpus=1,
                                          max_restarts=RESTARTS)
        try:
            out = gather(len(texts), vectors.iter_batches(batch_size=None, batch_format="numpy"))
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - workers that keep dying, a worker that cannot load the model...
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ProviderError(f"Ray Data could not embed the texts: {type(exc).__name__}: {first}") from None
        self.batches += blocks
        self.texts += len(texts)
        return out

    @property
    def executor(self) -> dict[str, Any]:
        """What the run's manifest records of the executor (as the per-call Ray executor does)."""
        return {"name": "ray", "via": "ray.data", "address": self.address, "workers": self.workers,
                "batch_size": self.batch_size, "batches": self.batches, "texts": self.texts}

"""The Ray executor (``assistcode code --executor ray [--ray-address ADDRESS]``): a cluster's workers make the calls,
this process stays the only one that writes the project's store.

The engine runs exactly as on one machine (cache looked up before any call, retries, validation, one atomic write
per segment); only its provider is replaced by :class:`RayProvider`, which gathers the calls the engine has in
flight into small batches and sends each batch to the least loaded of a few Ray actors. Each actor holds one
provider: for ``local`` one model per actor, for ``openai`` the endpoints (several ``--base-url`` shared through an
:class:`~assistcode.providers.endpoints.EndpointPool` in each actor). Replies stream back as each batch ends.

A worker that dies has its batch sent again to another actor (a new one takes the dead one's place): the engine
waits on each call once and writes each segment once, so nothing is stored twice; what the dead worker had asked
may have been paid for, and is counted (``batches_rerun``). The API key never travels through Ray: each worker
reads it from its own environment, from the variable that holds it here. Without an address a local cluster is started
(:data:`LOCAL_CPUS` CPUs); an address that cannot be reached is one line (exit 2) before anything is sent.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError
from ..providers.base import CallOptions, ProviderError, Reply, TransientError, require

LOCAL_CPUS = 2
"""CPUs of the local cluster started when no ``--ray-address`` is given."""
BATCH_MAX = 16
"""Calls sent to an actor in one batch at most."""
LINGER_S = 0.002
"""How long a batch waits for more calls before it goes."""
CONNECT_TIMEOUT_S = 5.0
LOCAL_THREADS = 4
"""``local``: threads (and Ray CPUs) per model, unless the provider options name ``n_threads``."""


def connect(address: str | None) -> Any:
    """Ray, connected: to ``address`` (checked reachable first) or to a local cluster started here."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine unasked
    check_address(address)
    ray = require("ray", "assistcode[ray]")
    if ray.is_initialized():
        return ray
    try:
        if address:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(num_cpus=LOCAL_CPUS, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as exc:  # ConnectionError, RuntimeError, ...: the cluster is not there
        raise InputError(f"cannot connect to the Ray cluster at {address or 'a local cluster'}: {exc}",
                         field="--ray-address", hint="start it with `ray start --head`, or leave --ray-address out "
                         "to start a local one") from None
    _notices_to_stderr()
    return ray


def check_address(address: str | None) -> None:
    """A cluster address given (other than ``auto``) must be ``HOST:PORT`` and answer: else one line (InputError)."""
    if address and address != "auto":
        _reachable(address)


def _notices_to_stderr() -> None:
    """Ray prints the cluster's notices (a worker that died...) on stdout, where ``--json`` writes its result:
    they go to stderr instead."""
    try:
        import ray._private.worker as w
    except ImportError:
        return
    original = getattr(w, "print_to_stdstream", None)
    if original is None or getattr(original, "to_stderr", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> Any:
        return original({**data, "is_err": True}, ignore_prefix)

    to_stderr.to_stderr = True  # type: ignore[attr-defined]
    w.print_to_stdstream = to_stderr


def _reachable(address: str) -> None:
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise InputError(f"not a Ray address: {address!r}", field="--ray-address", hint="HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise InputError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}", field="--ray-address",
                         hint="is the cluster up (`ray status`)? Leave --ray-address out to start a local one") from None


KEY_VARIABLES = ("ASSISTCODE_API_KEY", "OPENAI_API_KEY")
"""Where the openai provider looks for a key by itself, in this order."""


def key_variable_of(key: str | None) -> str | None:
    """The name of this process's environment variable that holds ``key`` (the CLI reads keys from the
    environment only: ``OPENAI_API_KEY`` or ``--api-key-env NAME``), which the workers read for themselves: a key
    passed to an actor as a value would sit in the cluster's task records. None when there is no key."""
    if not key:
        return None
    names = [n for n in KEY_VARIABLES if os.environ.get(n) == key]
    names += sorted(n for n, v in os.environ.items() if v == key and n not in KEY_VARIABLES)
    if not names:
        raise InputError("with --executor ray the API key must come from an environment variable the workers have "
                         "too (OPENAI_API_KEY, or --api-key-env NAME): a key given as a value would travel in the "
                         "cluster's task records", field="api_key")
    return names[0]


class _Worker:
    """One Ray actor: one provider (one model, or the endpoints), answering batches of calls concurrently."""

    def __init__(self, name: str, model: str, options: dict[str, Any], urls: list[str],
                 key_variable: str | None = None) -> None:
        if key_variable:  # the key is read here, from the worker's environment: it never travels through Ray
            key = os.environ.get(key_variable)
            if not key:
                raise ProviderError(f"the Ray worker has no {key_variable} in its environment: export it where the "
                                    "cluster's nodes start (`ray start`), or leave --ray-address out")
            options = {**options, "api_key": key}
        if urls:
            from ..providers.endpoints import EndpointPool

            self.provider: Any = EndpointPool(urls, model, **options)
        else:
            from ..providers.base import get_provider

            self.provider = get_provider(name, model, **options)

    def pid(self) -> int:
        return os.getpid()

    def describe(self) -> dict[str, Any]:
        t = os.times()
        return {**self.provider.describe(), "worker_cpu_s": t.user + t.system}

    async def complete_many(self, items: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
        """Each item is ``("complete", (messages, options))`` or ``("score", (questions, answers, options))``."""
        from ..providers.logprobs import NoLogprobsError

        async def one(kind: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
            try:
                if kind == "score":
                    score = getattr(self.provider, "score", None)
                    if score is None:
                        return ("error", f"provider {getattr(self.provider, 'name', '?')!r} cannot score")
                    return ("ok", await score(*args))
                return ("ok", await self.provider.complete(*args))
            except NoLogprobsError as exc:
                return ("nologprobs", str(exc))
            except TransientError as exc:
                return ("transient", str(exc), exc.retry_after)
            except ProviderError as exc:
                return ("error", str(exc))
            except Exception as exc:  # noqa: BLE001 - reported on the call, never lost in the worker
                return ("error", f"{type(exc).__name__}: {exc}")

        return list(await asyncio.gather(*(one(kind, args) for kind, args in items)))


class RayProvider:
    """The engine's provider when the executor is Ray: each call goes to a worker, in batches."""

    def __init__(self, config: Any, options: dict[str, Any], workers: int | None = None) -> None:
        self.ray = connect(config.ray_address)
        self.name, self.model, self.address = config.provider, config.model, config.ray_address
        # what crosses to the workers must pickle: the mode memory's callback stays here (a worker that has to
        # step down from json_schema does so for itself)
        opts = {k: v for k, v in options.items() if not callable(v) and k not in ("modes",)}
        key_variable = key_variable_of(opts.pop("api_key", None))
        urls: list[str] = []
        if config.provider == "openai" and getattr(config, "replicas", ()):
            opts.pop("base_url", None)
            urls = [config.base_url or "", *config.replicas]
        cpus = max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        per_actor = 0
        if config.provider == "local":  # one model per actor, on the CPUs its threads use (no oversubscription)
            per_actor = min(cpus, int(opts.get("n_threads") or LOCAL_THREADS))
            opts["n_threads"] = per_actor
        self._spec = (config.provider, config.model, opts, urls, key_variable)
        self.size = max(1, workers or (cpus // per_actor if per_actor else cpus))
        self._actor_class = self.ray.remote(num_cpus=per_actor, max_restarts=0)(_Worker)
        self.actors: list[Any] = [self._new_actor() for _ in range(self.size)]
        self.load = [0] * self.size
        self.batches = 0
        self.batches_rerun = 0
        self.workers_lost = 0
        self._pending: list[tuple[str, tuple[Any, ...], asyncio.Future]] = []
        self._flusher: asyncio.TimerHandle | None = None
        self._final: dict[str, Any] | None = None
        # every worker up before the first call (a model loads, an SDK imports): a broken one fails here, not mid-run
        try:
            self.ray.get([a.pid.remote() for a in self.actors])
        except Exception as exc:
            raise ProviderError(f"a Ray worker could not start: {exc}") from None

    def _new_actor(self) -> Any:
        return self._actor_class.remote(*self._spec)

    def worker_pids(self) -> list[int]:
        return self.ray.get([a.pid.remote() for a in self.actors])

    # -- batching ------------------------------------------------------------------------------------------------
    async def complete(self, messages: list[dict[str, str]], options: CallOptions) -> Reply:
        return await self._ask("complete", (messages, options))

    async def score(self, questions: list[list[dict[str, str]]], answers: list[list[str]], options: CallOptions) -> Any:
        """Scoring templates: a segment's questions, answered by a worker's provider (its ``score``)."""
        return await self._ask("score", (questions, answers, options))

    async def _ask(self, kind: str, args: tuple[Any, ...]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._pending.append((kind, args, future))
        if len(self._pending) >= BATCH_MAX:
            self._flush()
        elif self._flusher is None:
            self._flusher = loop.call_later(LINGER_S, self._flush)
        kind, *rest = await future
        if kind == "ok":
            return rest[0]
        if kind == "transient":
            raise TransientError(rest[0], rest[1])
        if kind == "nologprobs":
            from ..providers.logprobs import NoLogprobsError

            raise NoLogprobsError(rest[0])
        raise ProviderError(rest[0])

    def _flush(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        batch, self._pending = self._pending, []
        if batch:
            asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[tuple[str, tuple[Any, ...], asyncio.Future]]) -> None:
        items = [(kind, args) for kind, args, _ in batch]
        self.batches += 1
        while True:
            i = min(range(len(self.actors)), key=lambda k: self.load[k])
            actor = self.actors[i]
            self.load[i] += len(items)
            try:
                results = await actor.complete_many.remote(items)
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError) as exc:
                # the worker died with the batch: a new one takes its place, and the batch goes again
                self.batches_rerun += 1
                if self.actors[i] is actor:  # the first of its batches to come back failed: replace it once
                    self.workers_lost += 1
                    self.actors[i] = self._new_actor()
                    self.load[i] = 0
                if self.batches_rerun > 8 * self.size * BATCH_MAX:
                    for _, _, f in batch:
                        if not f.done():
                            f.set_result(("error", f"Ray workers keep dying: {exc}"))
                    return
                continue
            except Exception as exc:  # noqa: BLE001 - a batch that cannot be sent fails its calls, retried by the engine
                for _, _, f in batch:
                    if not f.done():
                        f.set_result(("transient", f"Ray: {type(exc).__name__}: {exc}", None))
                return
            finally:
                if self.actors[i] is actor:
                    self.load[i] -= len(items)
            for (_, _, f), result in zip(batch, results):
                if not f.done():
                    f.set_result(result)
            return

    # -- the provider interface ----------------------------------------------------------------------------------------
    @property
    def mode(self) -> str | None:
        return self.describe().get("structured_output")

    def describe(self) -> dict[str, Any]:
        """The provider as the workers hold it, with each endpoint's counts summed over the workers."""
        if self._final is not None:
            return self._final
        described: list[dict[str, Any]] = []
        for actor in self.actors:
            try:
                described.append(self.ray.get(actor.describe.remote()))
            except Exception:  # noqa: BLE001 - a worker that just died: the others describe the same provider
                continue
        cpu = sum(d.pop("worker_cpu_s", 0.0) for d in described)
        out = dict(described[0]) if described else {"provider": self.name, "model": self.model}
        if any("endpoints" in d for d in described):
            summed: dict[str, dict[str, Any]] = {}
            for d in described:
                for e in d.get("endpoints", []):
                    into = summed.setdefault(e["url"], {"url": e["url"]})
                    for k, v in e.items():
                        if isinstance(v, int):
                            into[k] = into.get(k, 0) + v
            out["endpoints"] = list(summed.values())
        out["executor"] = {"name": "ray", "address": self.address, "workers": self.size, "batches": self.batches,
                           "batches_rerun": self.batches_rerun, "workers_lost": self.workers_lost,
                           "cpu_s_of_live_workers": round(cpu, 3)}
        return out

    async def aclose(self) -> None:
        self._final = self.describe()  # what the manifest says once the workers are gone
        for actor in self.actors:
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass

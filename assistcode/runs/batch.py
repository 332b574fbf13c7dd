"""The OpenAI Batch API as a run's transport (``assistcode code --provider openai --batch-api``).

The ordinary engine codes the run in passes, with :class:`BatchProvider` in place of the ``openai`` provider. In a
pass, every call the engine would send (after its cache: nothing cached or stored is asked for) is collected and the
group left for later (:class:`~assistcode.runs.engine.Deferred`); calls whose replies came back are answered from
them, so they are parsed, validated, cached, recorded and costed by the same code as a synchronous run's. Between
passes the collected requests are written as JSONL files (split at :data:`MAX_REQUESTS` lines and :data:`MAX_BYTES`),
uploaded with the Files API, sent as batches, polled and read back. Every submission is in the store before it is
uploaded (migration ``011_batches``), so a command killed at any point is resumed by the same command: it finds its
batches (by id, or by the tag in their metadata) and sends nothing twice. Requests that expire or fail for a passing
reason are sent again (at most ``max_submissions`` times per command), or called synchronously with
``fallback="sync"``. Replies are costed at half the synchronous price (the Batch API's discount). Scoring templates
send one request per question (per code, or per segment's options) with the first token's log-probabilities; a
segment is scored once all its questions have replies (:class:`~assistcode.runs.batch_provider.BatchProvider`).
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import tempfile
from contextlib import contextmanager
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from ..errors import AssistcodeError, InputError
from ..ids import canonical_json
from ..privacy import check_local_only, redact_url
from ..providers.openai_compat import REFUSAL
from ..store.db import StoreBusy, busy_timeout
from . import batch_store as bs
from . import store as rs
from .batch_files import (COMPLETION_WINDOW, ENDPOINT, MAX_BYTES, MAX_REQUESTS, Ingested, Outcome, batch_errors,
                          read_results, split_files)
from .batch_provider import BatchProvider
from .pending import WRITE_WAIT
from .pricing import Price

FALLBACKS = ("resubmit", "sync")
DISCOUNT = 0.5
"""The Batch API's price as a share of the synchronous one."""
MAX_FILE_BYTES = 4 * 1024 ** 3
"""The largest batch output file read (streamed line by line, never held whole)."""


class BatchError(AssistcodeError):
    """The Batch API could not be reached or refused a step; what was sent is kept, the same command resumes."""

    exit_code = 1


@dataclass
class BatchOptions:
    """How a run uses the Batch API (``RunConfig.batch``)."""

    fallback: str = "resubmit"
    """What becomes of a request that expired or failed for a passing reason: ``resubmit`` (in a new batch) or
    ``sync`` (called synchronously, at the full price, once no batch is open)."""
    wait: bool = True
    """Poll until every batch is read back; False: return once the batches are sent (``runs status N`` follows them,
    the same command reads them back)."""
    poll_seconds: float = 30.0
    max_requests: int = MAX_REQUESTS
    max_bytes: int = MAX_BYTES
    max_submissions: int = 3
    """Times one request is sent, per command, before it fails with its last reason."""
    notify: Callable[[str], None] | None = None
    """Receives the progress line while waiting (the CLI prints it on stderr)."""

    def validate(self) -> None:
        if self.fallback not in FALLBACKS:
            raise InputError(f"must be resubmit or sync, not {self.fallback!r}", field="--batch-fallback")
        for name in ("max_requests", "max_bytes", "max_submissions"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise InputError(f"must be a whole number of 1 or more, not {getattr(self, name)!r}", field=name)
        if not self.poll_seconds > 0:
            raise InputError(f"must be above 0, not {self.poll_seconds!r}", field="poll_seconds")


class Transport:
    """Files and batches through the ``openai`` SDK, on a client with the same guards as the provider's."""

    def __init__(self, inner: Any, local_only: bool, timeout: float) -> None:
        from ..providers.http_guard import guarded_client

        openai = inner._openai
        base = inner._client
        self.openai = openai
        wait = max(timeout, 300.0)  # a 200 MB upload takes longer than one call
        self.client = openai.AsyncOpenAI(base_url=str(base.base_url), api_key=base.api_key, timeout=wait, max_retries=2,
                                         http_client=guarded_client(local_only=local_only, timeout=wait,
                                                                    max_bytes=MAX_FILE_BYTES))

    async def upload(self, name: str, data: Any) -> str:
        """``data``: an open binary file, streamed by the HTTP client a piece at a time (never held whole)."""
        return (await self.client.files.create(file=(name, data, "application/jsonl"), purpose="batch")).id

    async def create(self, file_id: str, tag: str) -> Any:
        return await self.client.batches.create(input_file_id=file_id, endpoint=ENDPOINT,
                                                completion_window=COMPLETION_WINDOW, metadata={"assistcode": tag})

    async def retrieve(self, batch_id: str) -> Any:
        return await self.client.batches.retrieve(batch_id)

    async def find(self, tag: str) -> Any:
        """The batch created with ``tag`` in its metadata, if any (one created just before a command was killed)."""
        seen = 0
        async for b in self.client.batches.list(limit=100):
            if (getattr(b, "metadata", None) or {}).get("assistcode") == tag:
                return b
            seen += 1
            if seen >= 1000:  # the newest first: one created by the last command is among them
                break
        return None

    async def download(self, file_id: str | None, into: Any) -> None:
        """A file's content, streamed into the open binary file ``into`` (never held whole)."""
        if not file_id:
            return
        async with self.client.files.with_streaming_response.content(file_id) as resp:
            async for chunk in resp.iter_bytes():
                into.write(chunk)

    async def aclose(self) -> None:
        await self.client.close()


@contextmanager
def _part(spool: Any, size: int, piece: int = 1 << 20) -> Iterator[Any]:
    """The next ``size`` bytes of ``spool`` copied a piece at a time into a temporary file of their own, open at its
    start: an upload reads it as it sends, so memory stays a piece, not a 200 MB file."""
    with tempfile.TemporaryFile() as part:
        left = size
        while left:
            data = spool.read(min(piece, left))
            if not data:
                raise BatchError("the spool of collected requests ended early")
            part.write(data)
            left -= len(data)
        part.seek(0)
        yield part


def _lines(*files: Any) -> Iterator[tuple[str, int, str]]:
    """``(name, line number, text)`` of each line of the files given as ``file, name, file, name...``, read from the
    start, one at a time."""
    for fh, name in zip(files[::2], files[1::2]):
        fh.seek(0)
        for number, raw in enumerate(fh, 1):
            yield name, number, raw.decode("utf-8", "replace").rstrip("\r\n")


def batch_price(price: Price | None) -> Price | None:
    return Price(price.input_per_m * DISCOUNT, price.output_per_m * DISCOUNT) if price else None


class BatchRun:
    """One command's work on a run through the Batch API: passes of the engine, submissions, polling, reading back."""

    def __init__(self, engine: Any, segments: Sequence[Any], options: BatchOptions) -> None:
        c = engine.config
        if c.provider != "openai":
            raise InputError(f"--batch-api sends requests through OpenAI's Batch API: it goes with --provider openai, "
                             f"not {c.provider}", field="--batch-api")
        if getattr(c, "replicas", ()) or getattr(c, "executor", "process") != "process":
            raise InputError("--batch-api sends every request to one endpoint from this process: not with several "
                             "--base-url or --executor ray", field="--batch-api")
        options.validate()
        self.engine, self.segments, self.options = engine, segments, options
        self.db = engine.db
        self.full_price = engine.price
        self.endpoint = redact_url(c.base_url) or "https://api.openai.com/v1"
        check_local_only(c.base_url or "https://api.openai.com/v1", c.local_only)
        self.sync_calls = 0
        self.submitted = 0
        self.events: list[str] = []

    def note(self, line: str) -> None:
        self.events.append(line)
        if self.options.notify:
            self.options.notify(line)

    def next_state(self, attempts: int, transient: bool) -> str:
        if not transient:
            return "failed"
        if self.options.fallback == "sync":
            return "sync"
        return "retry" if attempts < self.options.max_submissions else "failed"

    async def run(self) -> Any:
        e = self.engine
        inner = self.inner = e.provider  # the openai provider, built as a synchronous run builds it
        transport = Transport(inner, e.config.local_only, e.config.timeout)
        existing = rs.find_run(self.db, e.fingerprint(self.segments))
        run_id = existing.id if existing else None
        provider = BatchProvider(inner, {}, e)
        if e.scoring is not None:
            from .scoring import CONTENT_FREE

            provider.direct = {canonical_json(e.scoring.questions({"id": "content-free", "text": t, "speaker": None})[0])
                               for t in CONTENT_FREE}
        try:
            if run_id is not None:
                with self._holding(run_id):
                    bs.reopen_failures(self.db, run_id, self.options.fallback)
                    await self._recover(transport, run_id)
                    open_ = [s for s in bs.submissions(self.db, run_id, open_only=True) if s.batch_id]
                    if open_:  # batches that ended while no command ran: read back before the first pass
                        await self._wait(transport, run_id, open_, once=True)
            while True:
                provider.begin_pass(bs.load_requests(self.db, run_id), run_id)
                e._provider, e.price = provider, batch_price(self.full_price)
                result = await e.run(self.segments)
                if result.already_finished:
                    return self._finish(result, None, provider)
                run_id = result.run.id
                open_ = bs.submissions(self.db, run_id, open_only=True)
                if provider.wanted or open_:
                    with self._holding(run_id):
                        if provider.wanted:
                            await self._submit(transport, run_id, provider.wanted, provider.spool)
                        open_ = bs.submissions(self.db, run_id, open_only=True)
                        if open_ and self.options.wait:
                            await self._wait(transport, run_id, open_)
                if open_ and not self.options.wait:
                    return self._finish(result, run_id, provider, waiting=True)
                if open_:
                    e.stopped = None  # the budget is checked again on what was spent
                    continue
                if provider.wanted and e.stopped is None:
                    continue  # every file refused at upload: its requests are collected again (or failed for good)
                if provider.left_for_sync and e.stopped is None:
                    self.note(f"batch: {provider.left_for_sync} requests expired or failed; calling them synchronously "
                              "(--batch-fallback sync)")
                    if e.scoring is not None:  # per request: the questions answered in batches are not asked again
                        provider.begin_pass(bs.load_requests(self.db, run_id), run_id)
                        provider.sync_now = True
                        e.price = self.full_price  # the segment's batch replies too: its cost is not understated
                        result = await e.run(self.segments)
                    else:
                        e._provider, e.price = inner, self.full_price
                        calls_before = e.calls
                        result = await e.run(self.segments)
                        self.sync_calls = e.calls - calls_before
                return self._finish(result, run_id, provider)
        finally:
            if provider.spool is not None:
                provider.spool.close()
            await transport.aclose()
            await inner.aclose()

    @contextmanager
    def _holding(self, run_id: int) -> Iterator[None]:
        """The run is this command's while it sends and waits, between the engine's passes, as during them: the
        same command started again meanwhile is refused (RunBusy) instead of sending the same requests twice."""
        before = rs.get_run(self.db, run_id).status
        rs.claim_run(self.db, self.engine.fingerprint(self.segments), "", {})
        try:
            yield
        finally:
            try:
                with busy_timeout(self.db, WRITE_WAIT):
                    rs.release_run(self.db, run_id, "stopped" if before == "running" else before)
            except (StoreBusy, sqlite3.Error):
                pass  # the run stays "running" with this (ending) process as owner: the next command takes it over

    # -- sending -----------------------------------------------------------------------------------------------------
    async def _submit(self, transport: Transport, run_id: int, wanted: dict[str, int], spool: Any) -> None:
        """The collected request lines (in ``spool``, in the order of ``wanted``), split into files, each recorded,
        uploaded and sent as a batch."""
        try:
            files = list(split_files(wanted.items(), self.options.max_requests, self.options.max_bytes))
        except ValueError as exc:
            raise InputError(str(exc), field="--batch-api", hint="shorten the prompt (fewer examples or codes), or code "
                             "without --batch-api") from None
        spool.seek(0)
        for chunk in files:
            size = sum(length for _, length in chunk)
            with _part(spool, size) as data:
                sub = bs.add_submission(self.db, run_id, self.endpoint, [cid for cid, _ in chunk], size)
                await self._send(transport, sub, data)
            self.submitted += len(chunk)

    async def _send(self, transport: Transport, sub: bs.Submission, data: Any) -> None:
        """Upload (unless done) and create the batch of a stored submission; ``data``: its file, open for reading."""
        oa = transport.openai
        file_id = sub.input_file_id
        try:
            if file_id is None:
                if data is None:
                    raise BatchError("lost before upload")
                file_id = await transport.upload(f"{sub.tag}.jsonl", data)
                bs.update_submission(self.db, sub.id, input_file_id=file_id, status="uploaded")
            batch = await transport.create(file_id, sub.tag)
        except oa.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code == 429:
                raise BatchError(f"the Batch API failed ({exc.status_code}: {exc.message}); nothing is lost: run the "
                                 "same command again") from None
            reason = f"batch file rejected by the API ({exc.status_code}): {exc.message}"
            bs.abandon(self.db, sub, reason, self.next_state)
            self.note(f"batch: {sub.requests} requests: {reason}")
            return
        except oa.APIConnectionError as exc:
            raise BatchError(f"the Batch API could not be reached ({exc.__cause__ or exc}); nothing is lost: run the same "
                             "command again") from None
        bs.update_submission(self.db, sub.id, batch_id=batch.id, status=batch.status)
        self.note(f"batch: sent {sub.requests} requests ({sub.bytes:,} bytes) as {batch.id}")

    async def _recover(self, transport: Transport, run_id: int) -> None:
        """Submissions a killed command left half-way: the batch found by its tag, else created from the uploaded
        file, else given up (its requests are collected again by the next pass)."""
        for sub in bs.submissions(self.db, run_id, open_only=True):
            if sub.batch_id:
                continue
            found = await transport.find(sub.tag)
            if found is not None:
                bs.update_submission(self.db, sub.id, batch_id=found.id, input_file_id=found.input_file_id,
                                     status=found.status)
                self.note(f"batch: found {found.id}, created before the last command stopped")
            elif sub.input_file_id:
                await self._send(transport, sub, None)
            else:
                bs.abandon(self.db, sub, "the command stopped before the file was uploaded",
                           lambda attempts, transient: "retry")

    # -- waiting and reading back --------------------------------------------------------------------------------------
    async def _wait(self, transport: Transport, run_id: int, open_: list[bs.Submission], once: bool = False) -> None:
        """Poll the open batches until one or more ends, then read those back (``once``: one round, no wait)."""
        failures = 0
        while True:
            finished = []
            states: Counter[str] = Counter()
            done = total = 0
            for sub in open_:
                try:
                    batch = await transport.retrieve(sub.batch_id)
                except transport.openai.APIError as exc:
                    failures += 1
                    if failures >= self.engine.config.max_attempts:
                        raise BatchError(f"the Batch API did not answer about {sub.batch_id} ({exc}); the batches are "
                                         "kept: run the same command again to resume") from None
                    continue
                states[batch.status] += 1
                counts = getattr(batch, "request_counts", None)
                done += (getattr(counts, "completed", 0) or 0) + (getattr(counts, "failed", 0) or 0)
                total += getattr(counts, "total", 0) or sub.requests
                bs.update_submission(self.db, sub.id, status=batch.status, counts={**sub.counts, "progress": {
                    "completed": getattr(counts, "completed", 0), "failed": getattr(counts, "failed", 0),
                    "total": getattr(counts, "total", 0)}})
                if batch.status in bs.TERMINAL:
                    finished.append((sub, batch))
            try:
                with busy_timeout(self.db, WRITE_WAIT):
                    rs.heartbeat(self.db, run_id)
            except StoreBusy:
                pass
            self.note(f"batch: {len(open_)} open ({', '.join(f'{n} {s}' for s, n in sorted(states.items()))}); "
                      f"{done} of {total} requests answered")
            if finished or once:
                for sub, batch in finished:
                    await self._read_back(transport, sub, batch)
                return
            await asyncio.sleep(self.options.poll_seconds)

    async def _read_back(self, transport: Transport, sub: bs.Submission, batch: Any) -> None:
        """A finished batch's output and error files, downloaded to temporary files, then read line by line into the
        store in one transaction (memory stays one line's, whatever the batch's size)."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            await transport.download(getattr(batch, "output_file_id", None), out)
            await transport.download(getattr(batch, "error_file_id", None), err)
            expected, known = bs.held_by(self.db, sub.id), bs.known_ids(self.db, sub.run_id)
            refused: list[str] = []

            def read(take: Callable[[str, Outcome], None]) -> Ingested:
                def cleaned(cid: str, outcome: Outcome) -> None:
                    self._scrub(outcome)
                    if outcome.reply is None and outcome.error and REFUSAL.search(outcome.error):
                        refused.append(outcome.error)
                    take(cid, outcome)

                got = read_results(_lines(out, "output file", err, "error file"), expected, known, cleaned)
                scrub = self.engine.scrub
                got.malformed_lines = [scrub(x) or "" for x in got.malformed_lines]
                got.unknown_ids = [scrub(x) or "" for x in got.unknown_ids]
                return got

            missing = {"expired": "the batch expired (24 h) before this request ran",
                       "cancelled": "the batch was cancelled before this request ran",
                       "failed": f"batch file rejected by the API: {batch_errors(batch)}"}.get(
                batch.status, "the batch's files have no result for this request")
            # all or nothing: a busy store raises StoreBusy and the next command reads the batch again
            counts = bs.record_results(self.db, sub, read, self.engine.scrub(missing) or missing, batch.status,
                                       self.next_state)
        self._downgrade_if_refused(refused)
        parts = [f"{counts['replies']} replies"] + [f"{counts[k]} {label}" for k, label in (
            ("sent_again", "to send again"), ("sync", "left for a synchronous call"), ("failed", "failed"),
            ("malformed_lines", "malformed lines skipped"), ("unknown_ids", "lines naming no request of the run skipped"),
            ("duplicates", "duplicate results skipped")) if counts[k]]
        self.note(f"batch: {sub.batch_id} {batch.status}: " + ", ".join(parts))

    def _scrub(self, o: Outcome) -> None:
        """What is stored of a batch's lines holds no secret the run knows (a server may echo the key), as the
        engine's own records hold none: every string of a reply, its content once parsed too, and the reason."""
        scrub = self.engine.scrub
        o.error = scrub(o.error)
        if o.reply is None:
            return
        o.reply = scrub.deep(o.reply)
        for choice in o.reply.get("choices") or []:
            message = choice.get("message") if isinstance(choice, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str) and "\\" in content:  # a secret written with JSON escapes
                try:
                    parsed = json.loads(content)
                except ValueError:
                    continue
                clean = scrub.deep(parsed)
                if clean != parsed:
                    message["content"] = json.dumps(clean, ensure_ascii=False)

    def _downgrade_if_refused(self, refused: list[str]) -> None:
        """A server that refuses the structured-output mode (llama.cpp's answers json_schema with HTTP 500): the next
        requests ask in the next mode, as a synchronous run's provider does (their bodies differ: new requests)."""
        mode = self.inner.mode
        if self.engine.scoring is not None:  # scoring requests ask for no structured output: nothing to move past
            return
        if refused and mode != "prompt" and self.inner._downgrade(mode):
            self.note(f"batch: the endpoint refused {mode} ({refused[0][:120]}); asking in {self.inner.mode} mode")

    # -- the end -------------------------------------------------------------------------------------------------------
    def _finish(self, result: Any, run_id: int | None, provider: BatchProvider, waiting: bool = False) -> Any:
        if self.engine.scoring is not None:
            self.sync_calls = provider.sync_requests  # requests, the content-free inputs' included
        result.calls = self.sync_calls
        if run_id is None:
            return result
        summary = {**bs.totals(self.db, run_id), "sent_now": self.submitted, "sync_calls_now": self.sync_calls,
                   "fallback": self.options.fallback, "price": "batch: half the synchronous price",
                   "open": [s.batch_id for s in bs.submissions(self.db, run_id, open_only=True)]}
        from ..store.db import transaction

        with transaction(self.db):
            # calls: those made synchronously (the engine also counts the replies it was handed from batches)
            self.db.execute("UPDATE runs SET manifest = json_set(manifest, '$.batch', json(?), "
                            "'$.last_session.calls', ?) WHERE id = ?", (json.dumps(summary), self.sync_calls, run_id))
        result.run = rs.get_run(self.db, run_id)
        result.batch = summary
        if waiting:
            result.stopped = f"{len(summary['open'])} batch(es) sent, not finished yet (assistcode runs status {run_id})"
        return result


def run_batch(engine: Any, segments: Sequence[Any], dry_run: bool = False) -> Any:
    """Code ``segments`` with ``engine`` through the Batch API (``engine.config.batch``: :class:`BatchOptions`)."""
    options = engine.config.batch if isinstance(engine.config.batch, BatchOptions) else BatchOptions()
    if dry_run:
        options.validate()
        engine.price = batch_price(engine.price)
        return asyncio.run(engine.run(segments, dry_run=True))
    return asyncio.run(BatchRun(engine, segments, options).run())


# -- runs status N ---------------------------------------------------------------------------------------------------
def run_status(db: Any, run: rs.RunRow, *, refresh: bool = True, api_key: str | None = None,
               local_only: bool = False) -> dict[str, Any]:
    """A run's state, with its batches: each asked about at its endpoint when ``refresh`` (their status and counts are
    stored), else as last stored."""
    subs = bs.submissions(db, run.id)
    notes: list[str] = []
    if refresh and any(s.batch_id and s.status not in bs.DONE | bs.TERMINAL for s in subs):
        try:
            asyncio.run(_refresh(db, [s for s in subs if s.batch_id and s.status not in bs.DONE | bs.TERMINAL],
                                 api_key, local_only))
        except Exception as exc:  # noqa: BLE001 - an unreachable endpoint leaves the stored status, said so
            notes.append(f"could not ask the Batch API ({type(exc).__name__}: {str(exc)[:160]}); stored status shown")
        subs = bs.submissions(db, run.id)
    counts = rs.segment_counts(db, run.id)
    total = (run.manifest.get("corpus") or {}).get("segments")
    return {"id": run.id, "coder": run.coder, "status": rs.shown_status(run), "segments": total,
            "ok": counts["ok"], "failed": counts["failed"], "cost_usd": counts["cost_usd"],
            "batch": bs.totals(db, run.id) if subs else None,
            "batches": [{"batch_id": s.batch_id, "status": s.status, "requests": s.requests, "bytes": s.bytes,
                         "endpoint": s.endpoint, "created_at": s.created_at, "updated_at": s.updated_at,
                         **({"progress": s.counts["progress"]} if "progress" in s.counts else {}),
                         **({k: v for k, v in s.counts.items() if k not in ("progress", "status")}),
                         **({"error": s.error} if s.error else {})} for s in subs],
            "notes": notes}


async def _refresh(db: Any, subs: list[bs.Submission], api_key: str | None, local_only: bool) -> None:
    import os

    import openai

    from ..providers.http_guard import guarded_client

    for endpoint in sorted({s.endpoint for s in subs}):
        check_local_only(endpoint, local_only)
        key = api_key or os.environ.get("ASSISTCODE_API_KEY") or os.environ.get("OPENAI_API_KEY") or "not-needed"
        client = openai.AsyncOpenAI(base_url=endpoint, api_key=key, timeout=30.0, max_retries=1,
                                    http_client=guarded_client(local_only=local_only, timeout=30.0))
        try:
            for s in (s for s in subs if s.endpoint == endpoint):
                b = await client.batches.retrieve(s.batch_id)
                rc = getattr(b, "request_counts", None)
                progress = {"completed": getattr(rc, "completed", 0), "failed": getattr(rc, "failed", 0),
                            "total": getattr(rc, "total", 0)} if rc is not None else {}
                bs.update_submission(db, s.id, status=b.status, counts={**s.counts, "progress": progress})
        finally:
            await client.close()


def waited_line(stream: Any = None) -> Callable[[str], None]:
    """A progress printer for :attr:`BatchOptions.notify`: one line rewritten in place on a terminal, else a line per
    change."""
    out = stream or sys.stderr
    last = {"text": ""}

    def notify(line: str) -> None:
        if line == last["text"]:
            return
        waiting = " open (" in line
        if out.isatty() and waiting:
            out.write("\r" + line[:200].ljust(len(last["text"][:200])))
        else:
            out.write(("\n" if out.isatty() and " open (" in last["text"] else "") + line + "\n")
        out.flush()
        last["text"] = line

    return notify



def summary_line(batch: dict[str, Any]) -> str:
    """One line on what a command did through the Batch API (``RunResult.batch``)."""
    req = batch.get("requests", {})
    skipped = [f"{batch[k]} {label}" for k, label in (("malformed_lines", "malformed lines"),
                                                      ("unknown_ids", "lines naming no request of the run"),
                                                      ("duplicates", "duplicate results")) if batch.get(k)]
    return (f"Batch API: {batch.get('sent_now', 0)} requests sent now, {sum(req.values())} in all over "
            f"{batch.get('submissions', 0)} files ({req.get('done', 0)} answered, {req.get('sent', 0)} waiting, "
            f"{req.get('failed', 0)} failed); {batch.get('sync_calls_now', 0)} synchronous calls"
            + (f"; {batch['expired']} batches expired" if batch.get("expired") else "")
            + (f"; {batch['rejected_or_lost']} files rejected" if batch.get("rejected_or_lost") else "")
            + (f"; skipped: {', '.join(skipped)}" if skipped else "") + "; at half the synchronous price.")


def status_lines(state: dict[str, Any]) -> list[str]:
    """``assistcode runs status N`` as text."""
    cost = f", ${state['cost_usd']:.4f}" if state.get("cost_usd") is not None else ""
    lines = [f"run {state['id']} ({state['coder']}): {state['status']}; {state['ok']} of {state['segments']} segments "
             f"coded, {state['failed']} failed{cost}"]
    for b in state["batches"]:
        p = b.get("progress") or {}
        answered = f", {p.get('completed', 0)} answered, {p.get('failed', 0)} failed" if p else ""
        skipped = ", ".join(f"{b[k]} {k.replace('_', ' ')}" for k in ("malformed_lines", "unknown_ids", "duplicates") if b.get(k))
        lines.append(f"  {b['batch_id'] or '(not created)':<28} {b['status']:<12} {b['requests']} requests{answered}"
                     + (f"; skipped {skipped}" if skipped else "") + (f"; {b['error']}" if b.get("error") else ""))
    if state.get("batch"):
        open_ = [b for b in state["batches"] if b["status"] not in bs.DONE]
        lines.append("  " + (f"{len(open_)} batches open: the same `assistcode code ... --batch-api` command reads them "
                             "back once they end" if open_ else "no batch open"))
    lines += [f"  note: {n}" for n in state.get("notes", [])]
    return lines

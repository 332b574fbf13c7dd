"""A real HTTP server speaking the OpenAI chat-completions API on 127.0.0.1, scriptable for tests and benchmarks.

It answers like a coder that applies each code whose id occurs in a segment (the mock provider's rule), and can be
told to wait, stall, return 429 with Retry-After, 500, truncated JSON, unknown codes or invented quotes, at given
rates or from a queue of scripted answers. It can also refuse ``json_schema`` the way llama.cpp's server does
(HTTP 500 naming response_format). Control it in-process (``server.plan``) or over HTTP (``POST /_control/plan``,
``GET /_control/log``), or run it alone: ``python -m assistcode.testing.server --port 8765 --latency 0.2``.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..providers.mock import keyword_reply


@dataclass
class Plan:
    latency: float = 0.0
    """Seconds before every answer."""
    rate_429: float = 0.0
    retry_after: float = 0.05
    rate_500: float = 0.0
    rate_stall: float = 0.0
    stall_seconds: float = 30.0
    rate_malformed: float = 0.0
    rate_unknown_code: float = 0.0
    rate_invented_quote: float = 0.0
    reject_json_schema: bool = False
    """Answer ``response_format: json_schema`` with HTTP 500, as llama.cpp's server does."""
    no_logprobs: bool = False
    """Ignore ``logprobs`` in requests and return none, as reasoning models and some servers do."""
    batch: dict[str, Any] = field(default_factory=dict)
    """The Files and Batch APIs' script: fields of :class:`~assistcode.testing.batches.BatchPlan`."""
    seed: int = 0
    queue: list[dict[str, Any]] = field(default_factory=list)
    """Scripted answers, used first, in order: {"status", "content", "delay", "headers", "body", "finish_reason",
    "drip", "raw", "content_type", "huge", "chunked"} (``drip``: seconds between the body's bytes, sent one at a
    time; ``raw``: this text as the whole body, of ``content_type`` (default text/html), with any status;
    ``huge``: a body of that many bytes, streamed, with no Content-Length and the connection closed after it when
    ``chunked``). A redirect is ``{"status": 307, "headers": {"Location": URL}}``."""


@dataclass
class Raw:
    """A body sent as it is: ``text`` (or ``size`` bytes of filler, streamed) of ``content_type``."""

    text: str = ""
    content_type: str = "text/html; charset=utf-8"
    size: int = 0
    declare_length: bool = True


DRIP_HEADER = "X-Fake-Drip-Seconds"
"""Set from a scripted answer's ``drip`` (seconds between body bytes); consumed by the handler, never sent."""


_OPTION = re.compile(r"^([A-Z])\. (?:.*\(id: (\S+)\)|none of these)\s*$", re.MULTILINE)


def keyword_logprobs(messages: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """The first answer token's distribution, most likely first, by the keyword rule: a yes/no question about a code
    (``(id: CODE)`` in its last line) gets "yes" with 0.9 when the segment mentions the code, else 0.1; a lettered
    choice gives 0.85 to the first option whose code the segment mentions (else to "none of these"). The mass is
    split between spelling variants (``yes``, `` Yes``) and a little left to other tokens, as real models do."""
    user = messages[-1]["content"]
    blocks = re.findall(r'"""\n(.*?)\n"""', user, re.DOTALL)
    text = (blocks[-1] if blocks else user).lower()  # the segment comes last, after any context
    options = _OPTION.findall(user)
    if options:
        hit = next((label for label, code in options if code and code.lower() in text), None)
        hit = hit or next((label for label, code in options if not code), None)
        rest = [label for label, _ in options if label != hit]
        dist = {hit: 0.85} if hit else {}
        left = (1.0 if hit is None else 0.14)
        dist.update({label: left / max(len(rest), 1) for label in rest})
    else:
        codes = re.findall(r"\(id: (\S+)\)", user)
        p_yes = 0.9 if codes and codes[-1].lower() in text else 0.1
        dist = {"yes": p_yes * 0.98, "no": (1 - p_yes) * 0.98}
    out: list[tuple[str, float]] = []
    for token, p in dist.items():
        out += [(token, math.log(p * 0.8)), (" " + token.capitalize(), math.log(p * 0.2))]
    out.append(("The", math.log(0.01)))
    return sorted(out, key=lambda e: -e[1])


class _Handler(BaseHTTPRequestHandler):
    server: "FakeOpenAIServer._HTTP"
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    disable_nagle_algorithm = True  # as real servers do: no 40 ms delayed-ACK stall between headers and body

    def log_message(self, *args: Any) -> None:  # quiet
        return

    def _send_raw(self, status: int, body: Raw, headers: dict[str, str]) -> None:
        size = body.size or len(body.text.encode())
        self.send_response(status)
        self.send_header("Content-Type", body.content_type)
        if body.declare_length:
            self.send_header("Content-Length", str(size))
        else:  # the body ends when the connection closes
            self.send_header("Connection", "close")
            self.close_connection = True
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        try:
            if body.size:
                chunk = b"a" * (1 << 16)
                for at in range(0, size, len(chunk)):
                    self.wfile.write(chunk[: min(len(chunk), size - at)])
            else:
                self.wfile.write(body.text.encode())
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, Raw):
            return self._send_raw(status, body, dict(headers or {}))
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        headers = dict(headers or {})
        drip = float(headers.pop(DRIP_HEADER, 0) or 0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            if drip:  # one byte at a time: a per-read timeout never fires, only a deadline on the whole call does
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(drip)
            else:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _batch_api(self, method: str, body: bytes) -> None:
        """``/v1/files`` and ``/v1/batches`` (testing/batches.py)."""
        status, payload, content_type = self.server.owner.batches.handle(method, self.path, self.headers, body)
        if content_type is not None:
            return self._send(status, Raw(payload.decode("utf-8", "replace"), content_type))
        self._send(status, payload)

    def do_GET(self) -> None:
        owner = self.server.owner
        if "/files" in self.path or "/batches" in self.path:
            return self._batch_api("GET", b"")
        if self.path == "/_control/log":
            with owner.lock:
                self._send(200, owner.log)
        elif self.path.endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        owner = self.server.owner
        if "/files" in self.path or "/batches" in self.path:
            return self._batch_api("POST", self.rfile.read(int(self.headers.get("Content-Length", 0))))
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/_control/plan":
            owner.set_plan(Plan(**body))
            return self._send(200, {"ok": True})
        if not self.path.endswith("/chat/completions"):
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        status, payload, headers, delay = owner.answer(body, self.headers.get("Authorization", ""))
        if delay:
            time.sleep(delay)
        self._send(status, payload, headers)


class FakeOpenAIServer:
    """Start with ``with FakeOpenAIServer(plan) as server: ... server.base_url``."""

    class _HTTP(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256
        owner: "FakeOpenAIServer"

    def __init__(self, plan: Plan | None = None, port: int = 0) -> None:
        self.lock = threading.Lock()
        self.log: list[dict[str, Any]] = []
        self.set_plan(plan or Plan())
        from .batches import FakeBatches

        self.batches = FakeBatches(self)
        self.httpd = self._HTTP(("127.0.0.1", port), _Handler)
        self.httpd.owner = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def set_plan(self, plan: Plan) -> None:
        with self.lock:
            self.plan = plan
            self.rng = random.Random(plan.seed)
            self.queue = list(plan.queue)

    def __enter__(self) -> "FakeOpenAIServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def calls(self) -> int:
        return sum(1 for e in self.log if e["kind"] == "chat")

    def answer(self, body: dict[str, Any], auth: str) -> tuple[int, Any, dict[str, str], float]:
        plan = self.plan
        with self.lock:
            entry = {"kind": "chat", "time": time.time(), "response_format": (body.get("response_format") or {}).get("type"),
                     "tools": bool(body.get("tools")), "model": body.get("model"), "auth": auth[:12],
                     "last_message": body["messages"][-1]["content"][-400:]}
            scripted = self.queue.pop(0) if self.queue else None
            roll = self.rng.random()
            roll2 = self.rng.random()
        if plan.reject_json_schema and entry["response_format"] == "json_schema":
            entry["outcome"] = "refused json_schema"
            self._log(entry)
            return 500, {"error": {"code": 500, "message": "Unsupported response_format type: json_schema", "type": "server_error"}}, {}, 0
        if scripted is not None:
            entry["outcome"] = f"scripted {scripted.get('status', 200)}"
            self._log(entry)
            status = scripted.get("status", 200)
            headers = dict(scripted.get("headers", {}))
            if scripted.get("drip"):
                headers[DRIP_HEADER] = str(scripted["drip"])
            if "raw" in scripted or "huge" in scripted:
                raw = Raw(scripted.get("raw", ""), scripted.get("content_type", "text/html; charset=utf-8"),
                          int(scripted.get("huge", 0)), not scripted.get("chunked", False))
                return status, raw, headers, scripted.get("delay", 0)
            if status != 200:
                return status, scripted.get("body", {"error": {"message": "scripted error"}}), headers, scripted.get("delay", 0)
            done = self._completion(body, scripted["content"], scripted.get("finish_reason", "stop"))
            return 200, done, headers, scripted.get("delay", 0)
        thresholds = [("429", plan.rate_429), ("500", plan.rate_500), ("stall", plan.rate_stall),
                      ("malformed", plan.rate_malformed), ("unknown_code", plan.rate_unknown_code),
                      ("invented_quote", plan.rate_invented_quote)]
        outcome, acc = "ok", 0.0
        for name, rate in thresholds:
            acc += rate
            if roll < acc:
                outcome = name
                break
        entry["outcome"] = outcome
        self._log(entry)
        if outcome == "429":
            return 429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"Retry-After": f"{plan.retry_after:g}"}, 0
        if outcome == "500":
            return 500, {"error": {"message": "internal error", "type": "server_error"}}, {}, plan.latency
        if outcome == "stall":
            return 200, self._completion(body, '{"codes": []}'), {}, plan.stall_seconds
        if body.get("logprobs") and not plan.no_logprobs:  # a scoring template: answer with the first token's distribution
            top = keyword_logprobs(body["messages"])[: int(body.get("top_logprobs") or 1)]
            return 200, self._completion(body, top[0][0], "length", top), {}, plan.latency
        content = keyword_reply(body["messages"])
        if outcome == "malformed":
            content = content[: max(1, len(content) // 2)]
        elif outcome in ("unknown_code", "invented_quote"):
            data = json.loads(content)
            key = "segments" if "segments" in data else None
            items = [s["codes"] for s in data["segments"]] if key else [data["codes"]]
            for codes in items:
                if outcome == "unknown_code":
                    codes.append({"code": "invented-code", "rationale": "x", "evidence": "", "confidence": 0.5})
                else:
                    for c in codes:
                        c["evidence"] = f"words that are nowhere {roll2:.6f}"
            content = json.dumps(data)
        return 200, self._completion(body, content), {}, plan.latency

    def _completion(self, body: dict[str, Any], content: str, finish_reason: str = "stop",
                    top: list[tuple[str, float]] | None = None) -> dict[str, Any]:
        prompt = sum(len(m["content"]) for m in body["messages"]) // 4
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if top is not None:
            entries = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top]
            return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish_reason,
                                 "logprobs": {"content": [{**entries[0], "top_logprobs": entries}]}}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": 1, "total_tokens": prompt + 1}}
        if body.get("tools"):
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "reply", "arguments": content}}]}
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": len(content) // 4, "total_tokens": prompt + len(content) // 4}}

    def _log(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.append(entry)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--plan", help="JSON of a Plan")
    p.add_argument("--latency", type=float, default=0.0)
    args = p.parse_args()
    plan = Plan(**json.loads(args.plan)) if args.plan else Plan(latency=args.latency)
    server = FakeOpenAIServer(plan, args.port)
    print(json.dumps({"base_url": server.base_url, "plan": asdict(plan)}), flush=True)
    server.thread.start()
    try:
        server.thread.join()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

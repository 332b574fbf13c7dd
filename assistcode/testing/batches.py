"""The testing server's Files and Batch APIs (``/v1/files``, ``/v1/batches``), scriptable for tests and benchmarks.

Each request line of a batch is answered by the server's chat logic (its :class:`~assistcode.testing.server.Plan`:
rates of errors, scripted answers), so a batch codes as a synchronous run would. ``Plan.batch`` scripts the rest,
as a dict of :class:`BatchPlan` fields, e.g. ``{"complete_after": 0.2, "script": [{"expire": True, "keep": 2}]}``:
the ``script`` entries apply to the batches in the order they are created (the first entry to the first batch).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any

FILE_CONTENT_TYPE = "application/octet-stream"


@dataclass
class BatchPlan:
    complete_after: float = 0.0
    """Seconds from a batch's creation to its end (it is ``in_progress`` meanwhile)."""
    max_requests: int = 50_000
    """A larger input file is rejected (the batch fails validation), as OpenAI's limit."""
    max_bytes: int = 200 * 1024 * 1024
    script: list[dict[str, Any]] = field(default_factory=list)
    """Per batch, in order of creation: ``reject`` (a message: the file fails validation), ``upload_status`` (the
    upload of its file is answered with this HTTP status instead), ``expire`` (the batch expires; its first ``keep``
    requests are answered), ``fail`` (positions, from 0, of requests answered with HTTP ``fail_status``),
    ``malformed`` (lines of garbage added to the output file), ``unknown`` (results naming requests nobody sent),
    ``duplicate`` (the first N results written twice), ``delay`` (seconds, instead of ``complete_after``)."""
    fail_status: int = 500


def batch_plan(raw: dict[str, Any] | None) -> BatchPlan:
    names = {f.name for f in fields(BatchPlan)}
    return BatchPlan(**{k: v for k, v in (raw or {}).items() if k in names})


class FakeBatches:
    """State of the Files and Batch APIs of one :class:`~assistcode.testing.server.FakeOpenAIServer`."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.lock = threading.Lock()
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.uploads = 0
        self.sent: list[str] = []
        """custom_id of every request line of every batch created, in order."""

    @property
    def plan(self) -> BatchPlan:
        return batch_plan(getattr(self.owner.plan, "batch", None))

    def _script(self, n: int) -> dict[str, Any]:
        script = self.plan.script
        return dict(script[n]) if n < len(script) else {}

    # -- HTTP --------------------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any, str | None]:
        """(status, JSON body or bytes, content type for bytes)."""
        parts = [p for p in path.split("?")[0].split("/") if p]
        if parts and parts[0] == "v1":
            parts = parts[1:]
        if parts[:1] == ["files"]:
            if method == "POST" and len(parts) == 1:
                return self._upload(headers, body)
            if method == "GET" and len(parts) == 3 and parts[2] == "content":
                f = self.files.get(parts[1])
                return (200, f["data"], FILE_CONTENT_TYPE) if f else (404, _error("no such file"), None)
            if method == "GET" and len(parts) == 2:
                f = self.files.get(parts[1])
                return (200, _file_object(f), None) if f else (404, _error("no such file"), None)
        if parts[:1] == ["batches"]:
            if method == "POST" and len(parts) == 1:
                return self._create(json.loads(body or b"{}"))
            if method == "GET" and len(parts) == 1:
                with self.lock:
                    data = [self._advance(self.batches[i]) for i in reversed(self.order)]
                return 200, {"object": "list", "data": data, "has_more": False,
                             "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}, None
            if len(parts) >= 2 and parts[1] in self.batches:
                b = self.batches[parts[1]]
                if method == "GET" and len(parts) == 2:
                    with self.lock:
                        return 200, self._advance(b), None
                if method == "POST" and len(parts) == 3 and parts[2] == "cancel":
                    with self.lock:
                        b["cancel"] = True
                        return 200, self._advance(b), None
            return 404, _error(f"no batch {parts[1] if len(parts) > 1 else ''}"), None
        return 404, _error(f"no route {path}"), None

    def _upload(self, headers: Any, body: bytes) -> tuple[int, Any, str | None]:
        form = _multipart(headers.get("Content-Type", ""), body)
        if "file" not in form:
            return 400, _error("no file in the upload"), None
        with self.lock:
            n = self.uploads
            self.uploads += 1
            status = self._script(n).get("upload_status")
            if status:
                return int(status), _error("scripted upload refusal: the file is not a valid batch file"), None
            fid = f"file-{len(self.files) + 1:05d}"
            name, data = form["file"]
            self.files[fid] = {"id": fid, "data": data, "filename": name or "upload.jsonl",
                               "purpose": (form.get("purpose") or ("", b"batch"))[1].decode(), "created_at": int(time.time())}
            return 200, _file_object(self.files[fid]), None

    def _create(self, req: dict[str, Any]) -> tuple[int, Any, str | None]:
        fid = req.get("input_file_id")
        if fid not in self.files:
            return 400, _error(f"no input file {fid!r}"), None
        if req.get("endpoint") != "/v1/chat/completions" or req.get("completion_window") != "24h":
            return 400, _error("endpoint must be /v1/chat/completions and completion_window 24h"), None
        with self.lock:
            n = len(self.order)
            bid = f"batch_{n + 1:05d}"
            script = self._script(n)
            b = {"id": bid, "object": "batch", "endpoint": req["endpoint"], "input_file_id": fid,
                 "completion_window": "24h", "status": "validating", "created_at": int(time.time()),
                 "metadata": req.get("metadata"), "request_counts": {"total": 0, "completed": 0, "failed": 0},
                 "output_file_id": None, "error_file_id": None, "errors": None, "_t0": time.monotonic(),
                 "_script": script, "_n": n}
            b["_lines"], errors = self._validate(self.files[fid]["data"], script)
            if errors:
                b.update(status="failed", errors={"object": "list", "data": errors}, failed_at=int(time.time()))
            else:
                b["request_counts"]["total"] = len(b["_lines"])
                self.sent += [line["custom_id"] for line in b["_lines"]]
            self.batches[bid] = b
            self.order.append(bid)
            return 200, _public(b), None

    def _validate(self, data: bytes, script: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        plan = self.plan
        if script.get("reject"):
            return [], [{"code": "invalid_request", "message": str(script["reject"]), "line": 1}]
        if len(data) > plan.max_bytes:
            return [], [{"code": "file_too_large", "message": f"{len(data)} bytes, over {plan.max_bytes}", "line": None}]
        lines, errors, ids = [], [], set()
        for i, text in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            try:
                item = json.loads(text)
                assert isinstance(item["custom_id"], str) and isinstance(item["body"], dict)
                assert item.get("url") == "/v1/chat/completions" and item.get("method") == "POST"
            except (ValueError, KeyError, TypeError, AssertionError):
                errors.append({"code": "invalid_json_line", "message": "not a batch request line", "line": i})
                continue
            if item["custom_id"] in ids:
                errors.append({"code": "duplicate_custom_id", "message": item["custom_id"], "line": i})
            ids.add(item["custom_id"])
            lines.append(item)
        if len(lines) > plan.max_requests:
            errors.append({"code": "too_many_requests", "message": f"{len(lines)} requests, over {plan.max_requests}",
                           "line": None})
        return lines, errors

    # -- time passes ---------------------------------------------------------------------------------------------------
    def _advance(self, b: dict[str, Any]) -> dict[str, Any]:
        """Move a batch on by the clock (the lock is held)."""
        if b["status"] in ("failed", "completed", "expired", "cancelled"):
            return _public(b)
        script = b["_script"]
        due = script.get("delay", self.plan.complete_after)
        if b.get("cancel"):
            self._finish(b, "cancelled", keep=0)
        elif time.monotonic() - b["_t0"] >= due:
            if script.get("expire"):
                self._finish(b, "expired", keep=int(script.get("keep", 0)))
            else:
                self._finish(b, "completed", keep=len(b["_lines"]))
        else:
            b["status"] = "in_progress"
        return _public(b)

    def _finish(self, b: dict[str, Any], status: str, keep: int) -> None:
        script, plan = b["_script"], self.plan
        fail = set(script.get("fail", []))
        out, err = [], []
        for i, item in enumerate(b["_lines"]):
            cid = item["custom_id"]
            if i >= keep:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                err.append({"id": f"batch_req_{i}", "custom_id": cid, "response": None,
                            "error": {"code": code, "message": f"not run: the batch {status}"}})
                continue
            if i in fail:
                err.append({"id": f"batch_req_{i}", "custom_id": cid, "error": None, "response": {
                    "status_code": plan.fail_status, "request_id": f"req_{i}",
                    "body": {"error": {"message": "scripted failure", "type": "server_error"}}}})
                continue
            status_code, payload, _, _ = self.owner.answer(item["body"], "batch")
            if not isinstance(payload, dict):
                payload = {"error": {"message": "not JSON"}}
            line = {"id": f"batch_req_{i}", "custom_id": cid, "error": None,
                    "response": {"status_code": status_code, "request_id": f"req_{i}", "body": payload}}
            (out if status_code == 200 else err).append(line)
        texts = [json.dumps(x) for x in out]
        texts += [texts[i] for i in range(min(int(script.get("duplicate", 0)), len(texts)))]
        texts += ["{this is not json" for _ in range(int(script.get("malformed", 0)))]
        texts += [json.dumps({"id": "batch_req_x", "custom_id": f"ac-nobody-sent-this-{j}", "error": None,
                              "response": {"status_code": 200, "body": {"choices": []}}})
                  for j in range(int(script.get("unknown", 0)))]
        b["output_file_id"] = self._store_file(texts, b["id"] + "_output.jsonl") if texts else None
        b["error_file_id"] = self._store_file([json.dumps(x) for x in err], b["id"] + "_error.jsonl") if err else None
        b["request_counts"] = {"total": len(b["_lines"]), "completed": len(out), "failed": len(err)}
        b["status"] = status
        b[f"{status}_at"] = int(time.time())

    def _store_file(self, lines: list[str], name: str) -> str:
        fid = f"file-{len(self.files) + 1:05d}"
        self.files[fid] = {"id": fid, "data": ("\n".join(lines) + "\n").encode(), "filename": name,
                           "purpose": "batch_output", "created_at": int(time.time())}
        return fid


def _public(b: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in b.items() if not k.startswith("_") and k != "cancel"}


def _file_object(f: dict[str, Any]) -> dict[str, Any]:
    return {"id": f["id"], "object": "file", "bytes": len(f["data"]), "created_at": f["created_at"],
            "filename": f["filename"], "purpose": f["purpose"], "status": "processed"}


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error"}}


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (file name or None, bytes)."""
    marker = "boundary="
    if marker not in content_type:
        return {}
    boundary = content_type.split(marker, 1)[1].split(";")[0].strip().strip('"').encode()
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary):
        if b"\r\n\r\n" not in part:
            continue
        head, _, data = part.partition(b"\r\n\r\n")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        disposition = next((h for h in head.decode("utf-8", "replace").split("\r\n")
                            if h.lower().startswith("content-disposition")), "")
        attrs = dict(a.strip().split("=", 1) for a in disposition.split(";")[1:] if "=" in a)
        name = attrs.get("name", "").strip('"')
        filename = attrs["filename"].strip('"') if "filename" in attrs else None
        if name:
            out[name] = (filename, data)
    return out

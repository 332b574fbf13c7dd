"""The HTTP client under the OpenAI-compatible provider, with two guards the SDK's default lacks.

Redirects: with ``--local-only`` none is followed at all (a loopback server answering 307 would otherwise have the
request, transcript included, re-sent to another host). Without it, a redirect to another origin is followed only
when it drops the body (301/302/303 turn a POST into a GET; 307/308 would re-send it): a transcript never follows
a redirect off its host. The API key is dropped on any cross-origin redirect by the client itself.

Size: a reply is read no further than :data:`MAX_REPLY_BYTES` (a 200 MB reply once took 828 MB of memory); a
larger one fails the call with a reason. Compression is declined, so the cap counts what is decoded.
"""
from __future__ import annotations

from typing import Any

MAX_REPLY_BYTES = 16 * 1024 * 1024
"""The largest HTTP reply body read. A coding reply is kilobytes; a batch of many segments, a few hundred."""


class GuardError(Exception):
    """A reply the guards refuse; the message is the failure reason."""


class RedirectRefused(GuardError):
    pass


class ReplyTooLarge(GuardError):
    pass


def _httpx() -> Any:
    """The HTTP library the installed OpenAI SDK is built on (``httpx2`` in newer releases, else ``httpx``)."""
    import openai

    base = openai.DefaultAsyncHttpxClient.__mro__[1]
    import importlib

    return importlib.import_module(base.__module__.split(".")[0])


def _origin(url: Any) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def guarded_client(*, local_only: bool, timeout: float, max_bytes: int = MAX_REPLY_BYTES) -> Any:
    """An ``openai.DefaultAsyncHttpxClient`` with the redirect policy and the size cap."""
    import openai

    hx = _httpx()

    async def on_response(response: Any) -> None:
        """Runs on every response before its body is read, and before any redirect is followed."""
        if response.has_redirect_location:
            target = response.request.url.join(response.headers["Location"])
            if local_only:
                raise RedirectRefused(f"the endpoint redirected ({response.status_code}) to {_shown(target)}: not "
                                      "followed with --local-only")
            keeps_body = response.status_code in (307, 308)
            if keeps_body and _origin(target) != _origin(response.request.url):
                raise RedirectRefused(f"the endpoint redirected ({response.status_code}) to another host, "
                                      f"{_shown(target)}: not followed with the request's body")
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise ReplyTooLarge(f"reply of {int(length):,} bytes is larger than {max_bytes:,}: refused (not read)")
        if response.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
            raise GuardError("the endpoint compressed its reply though asked not to: refused (its size could not be "
                             "capped)")
        response.stream = CappedStream(response.stream)

    class CappedStream(hx.AsyncByteStream):  # type: ignore[misc, name-defined]
        """The body, read no further than ``max_bytes`` (whatever the headers said, or did not)."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __aiter__(self) -> Any:
            seen = 0
            async for chunk in self.inner:
                seen += len(chunk)
                if seen > max_bytes:
                    raise ReplyTooLarge(f"reply larger than {max_bytes:,} bytes: refused (not read further)")
                yield chunk

        async def aclose(self) -> None:
            await self.inner.aclose()

    # Event hooks run on the client, so the guards hold whichever transport a request takes (a proxy's included).
    return openai.DefaultAsyncHttpxClient(timeout=timeout, follow_redirects=not local_only,
                                          headers={"Accept-Encoding": "identity"},
                                          event_hooks={"response": [on_response]})


def _shown(url: Any) -> str:
    from ..privacy import redact_url

    return redact_url(str(url.copy_with(query=None))) or ""

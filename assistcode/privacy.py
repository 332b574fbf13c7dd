"""Keeping secrets and transcripts where they belong: URL redaction, tracing off, loopback checks."""
from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import InputError

_SECRET_PARAMS = {"key", "api-key", "api_key", "apikey", "token", "access_token", "sig", "signature", "code", "password"}
TRACING_VARIABLES = ("LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING", "LANGSMITH_TRACING", "LANGSMITH_TRACING_V2")


def redact_url(url: str | None) -> str | None:
    """The URL with any password in it and any secret-looking query parameter replaced by ``***``."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def tracing_off_unless_asked() -> None:
    """LangChain/LangSmith tracing sends prompts (transcripts) to a remote service: off unless the user set
    ``ASSISTCODE_ALLOW_TRACING=1``."""
    if os.environ.get("ASSISTCODE_ALLOW_TRACING") == "1":
        return
    for var in TRACING_VARIABLES:
        os.environ[var] = "false"


def is_loopback(url: str) -> bool:
    """True when the URL's host is on the loopback interface (127.0.0.0/8, ::1, localhost)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def check_local_only(url: str | None, local_only: bool) -> None:
    if local_only and url and not is_loopback(url):
        raise InputError(f"--local-only refuses the endpoint {redact_url(url)}: it is not on this machine's loopback "
                         "interface", field="--base-url", hint="use a server on 127.0.0.1, or drop --local-only")


def url_secrets(url: str | None) -> list[str]:
    """The password and secret-looking query values inside a URL."""
    if not url:
        return []
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() in _SECRET_PARAMS and v]
    return found


class Scrubber:
    """Replaces known secrets in any text before it is stored, logged or shown (servers echo URLs in errors)."""

    def __init__(self, secrets: list[str | None]) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str | None) -> str | None:
        if not text:
            return text
        for s in self.secrets:
            text = text.replace(s, "***")
        return text

    def deep(self, value: Any) -> Any:
        """``value`` (parsed JSON: a reply) with every string in it scrubbed, keys included: what a model echoes
        in a rationale, an evidence quote or a made-up code name is stored, shown and exported from there, and a
        secret written with JSON escapes only appears once the reply is parsed."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        return value

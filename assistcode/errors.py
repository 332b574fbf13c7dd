"""The exception hierarchy. Messages say what went wrong, where, and how to fix it.

The CLI turns an :class:`AssistcodeError` into one line on stderr and exit status 2 (bad input) or 1 (anything else);
library code raises and never prints.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


class AssistcodeError(Exception):
    """Base of every error assistcode raises on purpose."""

    exit_code = 1


class InputError(AssistcodeError):
    """Bad input from the user: a file, a column, a value. Carries where it was found.

    ``str(err)`` reads ``FILE:LINE: field 'F': what went wrong (how to fix it)``, leaving out what is unknown.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f":{self.line}" if self.line is not None else "") + ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        field = f"field '{self.field}': " if self.field else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{field}{self.message}{hint}"


class EncodingError(InputError):
    """A text file that cannot be decoded, or that is binary."""


class CodebookError(InputError):
    """A codebook that does not validate: duplicate ids, unknown parents, cycles, empty names."""


class GoldError(InputError):
    """Human codes that name unknown segments or codes, or that are malformed."""


class AgreementError(InputError):
    """Data that an agreement statistic cannot take: ragged rows, one coder, mixed types."""


class ProjectError(AssistcodeError):
    """A missing or unusable project directory or store."""

    exit_code = 2


def from_validation(exc: Any, path: str | Path, line_of: Any = None) -> InputError:
    """A pydantic ``ValidationError`` of a file's content as one clear InputError: the key and what is wrong
    (``line_of(loc)`` may say on which line the key stands)."""
    err = exc.errors()[0]
    key = ".".join(str(x) for x in err["loc"])
    msg = f"unknown key {key!r}" if err["type"] == "extra_forbidden" else err["msg"]
    return InputError(msg, path=path, field=key, line=line_of(err["loc"]) if line_of else None)


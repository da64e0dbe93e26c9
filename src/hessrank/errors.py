"""The errors hessrank raises on purpose, each with a one-line message.

``HessrankError`` is the root; ``ConfigError`` (a bad setting or argument),
``DataError`` (a data file that is missing, damaged or too large) and ``StoreError``
(a result store that is locked, damaged or not writable) are the kinds a caller may
want to tell apart. Library messages name the *parameter* (``activation='x': not one
of …``); the command line translates parameter names into its flags
(``--activation 'x': …``) through :attr:`HessrankError.param`.
"""

from __future__ import annotations

_NO_VALUE = object()


class HessrankError(Exception):
    """A failure hessrank detected and explains in one line.

    Built as ``HessrankError(message)`` or, for a bad value of one parameter,
    ``HessrankError.invalid(param, value, why)``: then ``param``, ``value`` and
    ``detail`` are kept, and ``str(err)`` is ``"param=value: why"``.
    """

    def __init__(self, message: str, *, param: str | None = None, value=_NO_VALUE, detail: str | None = None,
                 shown: str | None = None):
        super().__init__(_one_line(message))
        self.param = param
        self.value = value
        self.detail = None if detail is None else _one_line(detail)
        self.shown = None if shown is None else _one_line(shown)

    @classmethod
    def invalid(cls, param: str, value, detail: str, *, quoted: bool = True):
        """The error for ``param`` set to ``value``; ``detail`` says what is allowed.
        ``quoted=False`` shows the value as ``str(value)`` instead of ``repr(value)``."""
        shown = repr(value) if quoted else str(value)
        return cls(f"{param}={shown}: {detail}", param=param, value=value, detail=detail, shown=shown)

    @classmethod
    def about(cls, param: str, message: str):
        """An error about ``param`` that quotes no single value (e.g. ``units: missing``)."""
        return cls(f"{param}: {message}", param=param, detail=message)

    @property
    def has_value(self) -> bool:
        """Whether the error quotes one value of its parameter."""
        return self.value is not _NO_VALUE


def _one_line(text: str, limit: int = 2000) -> str:
    """``text`` on one line: a quoted value or a library's message may span several (a NumPy
    array, a traceback-like text); lines are joined with spaces and a very long text cut. A line
    ends wherever ``str.splitlines`` ends one (also at a form feed, a vertical tab, U+2028, …)."""
    text = str(text)
    lines = text.splitlines()
    if lines != [text]:
        text = " ".join(line.strip() for line in lines if line.strip())
    return text if len(text) <= limit else text[:limit - 1] + "…"


class ConfigError(HessrankError, ValueError):
    """A bad setting or argument: the message names it, its value and what is allowed."""


class DataError(HessrankError):
    """A data set that cannot be read: missing, damaged, tampered with or too large."""


class StoreError(HessrankError):
    """A result store that cannot be used: locked by another writer, damaged, or not writable."""


__all__ = ["HessrankError", "ConfigError", "DataError", "StoreError"]


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of what a user's code raised (``str(err)``), at most ``limit`` characters:
    the part of its message an error line of hessrank quotes."""
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else ""

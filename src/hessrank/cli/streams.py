"""Output that survives any locale: where stdout or stderr cannot encode the tool's symbols
(``LC_ALL=C``, ``PYTHONIOENCODING=ascii``), they are written with ASCII names (``Σ`` →
``Sigma``, ``≤`` → ``<=``, ``×`` → ``x``) and anything else unencodable becomes ``?``,
instead of failing after all the work on the first symbol printed."""

from __future__ import annotations

import codecs
import sys

#: the symbols the tool prints, and their ASCII names
ASCII_NAMES = str.maketrans({
    "Σ": "Sigma", "Λ": "Lambda", "Ω": "Omega", "Θ": "Theta", "θ": "theta", "λ": "lambda", "δ": "delta",
    "α": "alpha", "σ": "sigma", "ω": "omega", "μ": "mu", "φ": "phi", "χ": "chi", "κ": "kappa", "ℓ": "l",
    "×": "x", "·": "*", "÷": "/", "−": "-", "–": "-", "—": "--", "…": "...", "≤": "<=", "≥": ">=", "≠": "!=",
    "≈": "~", "±": "+/-", "→": "->", "↦": "->", "∈": " in ", "√": "sqrt", "∂": "d", "∇": "grad", "∫": "int",
    "‖": "||", "⌊": "floor(", "⌋": ")", "⌈": "ceil(", "⌉": ")", "⟨": "<", "⟩": ">", "½": "1/2", "²": "^2",
    "³": "^3", "⁸": "^8", "⁻": "^-", "ᵀ": "^T", "ᵢ": "_i", "₈": "8", "\u0303": "~", "\u0302": "^",
})
#: a sample of what the tool prints: a stream that cannot encode these gets the ASCII names
_SAMPLE = "Σ≤×λ‖ᵀ…"


def _encodes(stream) -> bool:
    try:
        _SAMPLE.encode(codecs.lookup(stream.encoding or "ascii").name)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


class _AsciiNames:
    """A text stream that writes the tool's symbols by their ASCII names."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(text.translate(ASCII_NAMES))
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def survive_any_locale() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` write what they cannot encode as ASCII names or ``?``
    (a closed stream, ``None``, is left alone)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, _AsciiNames) or _encodes(stream):
            continue
        try:
            stream.reconfigure(errors="replace")
        except (AttributeError, ValueError, OSError):  # not a TextIOWrapper: the names still help
            pass
        setattr(sys, name, _AsciiNames(stream))

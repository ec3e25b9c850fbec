"""Which characters a name or a text from outside may hold (§3 contract, issue 10).

Characters that are not visible text — C0/C1 controls and DEL (Unicode category Cc), format
characters such as bidi overrides and zero-width ones (Cf), lone surrogates (Cs), line and
paragraph separators (Zl, Zp) — can move a terminal's cursor, recolour or retitle it, or reorder
what a reader sees. The API refuses them in names and texts; the CLI escapes any that were stored
before it did (``collectors.output``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# What a multi-line text (a comment, a reason) may hold besides visible text.
MULTILINE_ALLOWED = frozenset("\n\t")


def hidden_chars(text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """The characters of ``text`` that are not visible text, except ``allowed``, in order."""
    if text.isprintable():  # C speed for the common case; it is False for more than we refuse (e.g. NBSP)
        return []
    return [ch for ch in text if ch not in allowed and unicodedata.category(ch) in HIDDEN_CATEGORIES]


def codepoints(chars: list[str]) -> str:
    """``U+001B, U+202E``: how an error names refused characters without echoing them."""
    return ", ".join(dict.fromkeys(f"U+{ord(ch):04X}" for ch in chars))


def single_line(value: str) -> str:
    """A pydantic validator: a name, login, URL or id holds no control or format character."""
    if bad := hidden_chars(value):
        raise ValueError(f"must not contain control or invisible characters ({codepoints(bad)})")
    return value


def multi_line(value: str) -> str:
    """A pydantic validator: a comment may hold line feeds and tabs (CRLF is kept as LF), nothing else
    invisible."""
    value = value.replace("\r\n", "\n")
    if bad := hidden_chars(value, MULTILINE_ALLOWED):
        raise ValueError(f"must not contain control or invisible characters other than line feeds and "
                         f"tabs ({codepoints(bad)})")
    return value


def python_escape(ch: str) -> str:
    """``\\x1b``, ``\\u202e``: a hidden character made visible, as Python writes it."""
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def json_escape(ch: str) -> str:
    """``\\u001b``, or a surrogate pair beyond the BMP: valid inside a JSON string."""
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def escape_hidden(text: str, allowed: frozenset[str] = frozenset(),
                  escape: Callable[[str], str] = python_escape) -> str:
    """``text`` with every character that is not visible text, except ``allowed``, escaped."""
    bad = set(hidden_chars(text, allowed))
    return "".join(escape(ch) if ch in bad else ch for ch in text) if bad else text

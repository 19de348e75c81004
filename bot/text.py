"""Text hygiene for anything a user typed: folding for matching, cleaning for storing and showing.

Matching folds case and accents ("Café" == "cafe") and drops zero-width and bidi controls, so
"X" finds Twitter and a right-to-left override cannot make one service look like another.
"""

from __future__ import annotations

import re
import unicodedata

# Zero-width and bidirectional formatting characters: invisible, so they never carry meaning.
_INVISIBLE = {
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200e",
    "\u200f",
}


_INVISIBLE_RE = re.compile("[" + "".join(sorted(_INVISIBLE)) + "]")
# Unicode category Cc is exactly C0, DEL and C1; tab is allowed.
_CONTROL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def strip_invisible(text: str) -> str:
    # Every invisible character is non-ASCII: the common case costs one C call.
    return text if text.isascii() else _INVISIBLE_RE.sub("", text)


def has_control(text: str) -> bool:
    """True if ``text`` holds a control character other than tab (newlines included)."""
    return _CONTROL_RE.search(text) is not None


def fold(text: str) -> str:
    """Case-, accent- and width-insensitive form used to compare names."""
    text = unicodedata.normalize("NFKD", strip_invisible(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.casefold().split())


def clean_note(text: str, limit: int) -> str:
    """A free-text note as stored: invisible and control characters removed, length capped."""
    text = strip_invisible(text)
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return " ".join(text.split())[:limit]


def truncate(text: str, limit: int, *, more: str = "…") -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(more))] + more

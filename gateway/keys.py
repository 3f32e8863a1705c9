"""Object keys taken from clients: which can be stored and served, and how
they are written in a URL.

A key is refused (400 with the reason) when some store or some HTTP client
could not keep it apart from another: control characters and NUL (never
servable: ``\\n`` ends a request line), text that is not UTF-8, more than
``MAX_KEY_BYTES`` bytes with the bucket's prefix (S3's limit, and Swift's
default), more than ``MAX_DEPTH`` ``/``-separated segments (a directory
per segment on local disk), or a ``.`` or ``..`` segment: every HTTP client
removes those from a URL path, and browsers (the WHATWG URL standard) remove
their percent-encoded forms too, so no URL could address such an object —
it would fetch another one.

In a URL every segment is percent-encoded, dots too (``%2E``): keys stored
before these rules still get a URL that no non-browser client rewrites.
"""

from __future__ import annotations

import unicodedata

MAX_KEY_BYTES = 1024
MAX_DEPTH = 255


NOT_UTF8 = "the key is not valid UTF-8"


def is_utf8(text: str) -> bool:
    """False when ``text`` holds lone surrogates: bytes that were not UTF-8,
    as aiohttp decodes them from a raw request path."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def key_problem(key: str, prefix: str = "") -> str | None:
    """Why ``key`` (stored as ``prefix + key``) cannot be stored and served,
    or None when it can."""
    if not key:
        return "the key is empty"
    if not is_utf8(prefix + key):
        return NOT_UTF8
    size = len((prefix + key).encode("utf-8"))
    if size > MAX_KEY_BYTES:
        return f"the key is longer than {MAX_KEY_BYTES} bytes"
    if any(unicodedata.category(c) == "Cc" for c in key):
        return "the key contains control characters"
    if key.count("/") >= MAX_DEPTH:
        return f"the key has more than {MAX_DEPTH} path segments"
    if any(s in (".", "..") for s in key.split("/")):
        return "the key has a '.' or '..' segment, which no URL can address"
    return None

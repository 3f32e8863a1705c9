"""Object keys written in URL paths: the stores' URLs (S3 public, Swift) and
the gateway's own object URLs use the same encoding."""

from __future__ import annotations

from urllib.parse import quote


def key_path(key: str) -> str:
    """``key`` as a URL path: every ``/``-separated segment percent-encoded,
    ``.`` and ``..`` segments too (``%2E``), so no HTTP client or proxy
    normalises them away into the URL of another object."""
    parts = quote(key, safe="/").split("/")
    return "/".join(p.replace(".", "%2E") if p in (".", "..") else p for p in parts)

"""Requests of each interop version, built the way its draft says."""

from __future__ import annotations

import time

import requests

from tests.ietf.raw import Exchange, request

#: every interop version the gateway speaks; None = no interop header (final-RFC style)
VERSIONS = [3, 4, 5, 6, 7, 8, 9, 10]
PARTIAL = "application/partial-upload"
PROBLEM_TYPES = "https://iana.org/assignments/http-problem-types#"


def complete_field(v: int | None) -> str:
    return "Upload-Incomplete" if v == 3 else "Upload-Complete"


def fields(v: int | None, complete: bool | None = None, **extra: str) -> dict[str, str]:
    """The interop version and the completeness field of version ``v``."""
    h: dict[str, str] = {}
    if v is not None:
        h["Upload-Draft-Interop-Version"] = str(v)
    if complete is not None:
        h[complete_field(v)] = (
            ("?0" if complete else "?1") if v == 3 else ("?1" if complete else "?0")
        )
    h.update({k.replace("_", "-"): val for k, val in extra.items()})
    return h


def says_complete(v: int | None, headers: dict[str, str]) -> bool:
    value = headers[complete_field(v).lower()]
    assert value in ("?0", "?1"), value
    return (value == "?1") != (v == 3)


def create(
    url: str, v: int | None, body: bytes = b"", *, complete: bool = False, **extra: str
) -> Exchange:
    return request("POST", url, fields(v, complete, **extra), body)


def append(
    url: str, v: int | None, offset: int, body: bytes, *, complete: bool, **extra: str
) -> Exchange:
    h = fields(v, complete, Upload_Offset=str(offset))
    if v is None or v >= 6:
        h["Content-Type"] = PARTIAL
    h.update({k.replace("_", "-"): val for k, val in extra.items()})
    return request("PATCH", url, h, body)


def offset_of(url: str, v: int | None) -> int:
    ex = request("HEAD", url, fields(v))
    assert ex.status == 204, (ex.status, ex.headers)
    return int(ex.headers["upload-offset"])


def wait_offset(url: str, at_least: int, timeout: float = 10) -> int:
    """The offset once the server has saved what an interrupted request sent.
    Polled with tus HEADs: an IETF HEAD would ask a write still in progress
    to stop where it is (so that the offset it answers is never outdated)."""
    deadline = time.time() + timeout
    offset = _tus_offset(url)
    while offset < at_least and time.time() < deadline:
        time.sleep(0.1)
        offset = _tus_offset(url)
    return offset


def _tus_offset(url: str) -> int:
    r = requests.head(url, headers={"Tus-Resumable": "1.0.0"}, timeout=30)
    assert r.status_code == 200, r.status_code
    return int(r.headers["Upload-Offset"])

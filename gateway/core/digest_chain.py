"""A SHA-256 chained through the numbered parts of a multipart session, as
they arrive in order, so that the object's digest is known without reading
its bytes back at completion (``chaining.py`` makes the links; ``digests``
uses them).

Part *n*'s record may carry a link: ``extra[CHAIN] = {"id": <random>,
"prev": <the link of part n-1 it continued>, "state": <the hashers' saved
state over the bytes of parts 1..n>}``. Part 1's link starts the chain
(``prev`` None). A link is written with the part it belongs to (or later,
onto that same part), never changed: a part sent again is a new record,
and its new link has a new id. So a list of parts is covered by the chain
as far as each listed part's ``prev`` is the id of the listed part before
it — a part left out, sent again, or linked to another predecessor ends the
covered prefix there, and the rest is read back.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from gateway.core.records import Status, UploadRecord

#: in a part's ``extra``: its link in its session's chain
CHAIN = "core:digest-chain"


def link(state: dict[str, Any], prev: str | None) -> dict[str, Any]:
    """A new link over ``state`` (``digests.Running.saved()``) after ``prev``."""
    return {"id": secrets.token_hex(16), "prev": prev, "state": state}


def of(record: UploadRecord | None) -> dict[str, Any] | None:
    """The link of a complete part, if it has a well-formed one."""
    if record is None or record.status is not Status.COMPLETE:
        return None
    found = record.extra.get(CHAIN)
    if (
        isinstance(found, dict)
        and isinstance(found.get("id"), str)
        and isinstance(found.get("state"), dict)
        and (found.get("prev") is None or isinstance(found.get("prev"), str))
    ):
        return found
    return None


def chained(parts: Sequence[UploadRecord]) -> bool:
    """Whether any of ``parts`` has a link (a multipart session's parts)."""
    return any(of(p) is not None for p in parts)


def prefix(parts: Sequence[UploadRecord]) -> tuple[dict[str, Any] | None, int]:
    """The saved state over the longest leading run of ``parts`` the chain
    covers, and how many parts that is (``None, 0``: none)."""
    prev: str | None = None
    state: dict[str, Any] | None = None
    count = 0
    for part in parts:
        found = of(part)
        if found is None or found["prev"] != prev:
            break
        prev, state, count = found["id"], found["state"], count + 1
    return state, count

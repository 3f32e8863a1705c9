"""Records written by earlier versions of the gateway, read by this one.

The state store outlives an upgrade (a SQLite file, a Redis), so an upload
begun before it is finished after it. A record whose layout has changed
since is converted as it is decoded (``UploadRecord.from_json``); the stored
bytes stay as they were until the record is next saved. Each conversion is
cheap to rule out: a few dictionary look-ups on the decoded record.

Conversions:

* **Qiniu v2 sessions and parts before ``core/multipart.py``.** A session
  was marked ``extra = {"qiniu": "v2", "maxPart": n}``; a part (id
  ``<session>-<n>``) ``{"qiniu": "v2", "uploadId", "part"}`` and, once
  sealed, ``"etag"`` (its MD5), ``"putTime"``, ``"sha1s"`` and, for part 1,
  ``"head"``. Now the core marks both under ``core:multipart`` and keeps the
  protocol's ``sha1s`` / ``head`` beside it. A part sealed without its etag
  (the old code saved the etag in a second step) stays unmarked: it is not
  listed and cannot be completed, as before, and the client puts it again.
"""

from __future__ import annotations

from typing import Any

#: ``core/multipart.py``'s mark (kept in step by ``tests/core/test_upgrades.py``)
MULTIPART_MARK = "core:multipart"

_OLD_V2 = ("qiniu", "v2")


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a decoded record) in the current layout; changed in place."""
    extra = data.get("extra")
    if (
        isinstance(extra, dict)
        and (data.get("protocol"), extra.get("qiniu")) == _OLD_V2
        and MULTIPART_MARK not in extra
    ):
        _qiniu_v2(data, extra)
    return data


def _qiniu_v2(data: dict[str, Any], extra: dict[str, Any]) -> None:
    if data.get("kind") == "assembly" and not data.get("parts"):
        del extra["qiniu"]
        extra.pop("maxPart", None)
        extra[MULTIPART_MARK] = "session"
        return
    session, number = extra.get("uploadId"), extra.get("part")
    if data.get("kind") != "part" or not isinstance(session, str) or not isinstance(number, int):
        return
    etag = extra.get("etag")
    if not isinstance(etag, str) and data.get("status") == "complete":
        return  # sealed without its etag: not a part anyone can list (see above)
    for name in ("qiniu", "uploadId", "part"):
        del extra[name]
    mark: dict[str, Any] = {"session": session, "number": number}
    if isinstance(etag, str):
        del extra["etag"]
        put_time = extra.pop("putTime", None)
        if not isinstance(put_time, int):
            put_time = int(data.get("updated_at") or 0)
        mark.update(etag=etag, putTime=put_time)
    extra[MULTIPART_MARK] = mark

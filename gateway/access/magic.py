"""Magic variables: ``$(name)`` in ``saveKey``, ``returnBody`` and
``callbackBody``.

Rendering depends on where the text goes:

* ``Mode.RAW`` (``saveKey``): the value as text.
* ``Mode.JSON`` (``returnBody``, JSON ``callbackBody``): JSON-safe. Inside a
  string literal (``"$(key)"``) the value is escaped without quotes; outside
  one (``$(fsize)``) it becomes a JSON literal — a number stays a number, text
  is quoted. A missing variable is empty: nothing inside a string, ``null``
  outside one, so the result stays valid JSON.
* ``Mode.FORM`` (form-urlencoded ``callbackBody``): percent-encoded.

Known variables: ``bucket key etag hash fsize mimeType fname fprefix ext
endUser uuid url deadline year mon day hour min sec`` and ``x:<name>``; any
other (``imageInfo.width``, ``persistentId``…) renders empty.
"""

from __future__ import annotations

import enum
import json
import mimetypes
import posixpath
import uuid as uuid_module
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote

Value = str | int | None


class Mode(enum.Enum):
    RAW = "raw"
    JSON = "json"
    FORM = "form"


def ext_of(fname: str | None, key: str | None, mime: str | None) -> str:
    """``$(ext)``: the suffix with its dot, from the file name, else the key,
    else the MIME type; empty if none."""
    for name in (fname, key):
        if name:
            ext = posixpath.splitext(name)[1]
            if ext and len(ext) > 1:
                return ext
    if mime and mime != "application/octet-stream":
        return mimetypes.guess_extension(mime.split(";", 1)[0].strip()) or ""
    return ""


def build_vars(
    *,
    bucket: str,
    key: str | None,
    etag: str | None,
    fsize: int | None,
    mime_type: str | None = None,
    fname: str | None = None,
    end_user: str | None = None,
    url: str | None = None,
    deadline: int | None = None,
    custom: Mapping[str, str] | None = None,
    now: datetime | None = None,
    uuid: str | None = None,
) -> dict[str, Value]:
    """The variables of one upload. ``custom`` holds ``x:`` fields, with or
    without their prefix. ``now`` is timezone-aware; local time by default."""
    moment = now or datetime.now().astimezone()
    values: dict[str, Value] = {
        "bucket": bucket,
        "key": key,
        "etag": etag,
        "hash": etag,
        "fsize": fsize,
        "mimeType": mime_type,
        "fname": fname,
        "fprefix": posixpath.splitext(fname)[0] if fname else None,
        "ext": ext_of(fname, key, mime_type) or None,
        "endUser": end_user,
        "uuid": uuid or str(uuid_module.uuid4()),
        "url": url,
        "deadline": deadline,
        "year": f"{moment.year:04d}",
        "mon": f"{moment.month:02d}",
        "day": f"{moment.day:02d}",
        "hour": f"{moment.hour:02d}",
        "min": f"{moment.minute:02d}",
        "sec": f"{moment.second:02d}",
    }
    for name, value in (custom or {}).items():
        values[name if name.startswith("x:") else f"x:{name}"] = value
    return values


def _text(value: Value) -> str:
    return "" if value is None else str(value)


def _json_literal(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def render(template: str, values: Mapping[str, Value], mode: Mode = Mode.RAW) -> str:
    out: list[str] = []
    in_string = False
    i, n = 0, len(template)
    while i < n:
        if template.startswith("$(", i):
            end = template.find(")", i + 2)
            if end < 0:
                out.append(template[i:])
                break
            value = values.get(template[i + 2 : end].strip())
            if mode is Mode.JSON:
                escaped = json.dumps(_text(value), ensure_ascii=False)[1:-1]
                out.append(escaped if in_string else _json_literal(value))
            elif mode is Mode.FORM:
                out.append(quote(_text(value), safe=""))
            else:
                out.append(_text(value))
            i = end + 1
            continue
        char = template[i]
        if mode is Mode.JSON:
            if in_string and char == "\\":
                out.append(template[i : i + 2])
                i += 2
                continue
            if char == '"':
                in_string = not in_string
        out.append(char)
        i += 1
    return "".join(out)

"""Log set-up: ``text`` (one human line) or ``json`` (one object per line,
for log shippers), both carrying the request a line was caused by.

JSON fields: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
then where known ``request_id``, ``protocol``, ``upload_id``, ``bucket``,
``key``, the access log's ``method``, ``path``, ``status``, ``bytes_in``,
``bytes_out``, ``duration_ms``, and ``exception`` (the traceback).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from gateway.observability import context

LOG_FORMATS = ("text", "json")

#: request fields copied onto every record (None where not known)
_REQUEST_FIELDS = ("request_id", "protocol", "upload_id", "bucket", "key")
#: fields the access log passes as ``extra``
ACCESS_FIELDS = ("method", "path", "status", "bytes_in", "bytes_out", "duration_ms")


class RequestFields(logging.Filter):
    """Adds the current request's fields to every record a handler emits."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            info = context.current()
            record.request_id = info.id if info else None
            record.protocol = info.protocol if info else None
            record.upload_id = info.upload_id if info else None
            record.bucket = info.bucket if info else None
            record.key = info.key if info else None
        return True


class TextFormatter(logging.Formatter):
    """``2026-01-01 12:00:00,123 INFO gateway.access [req 5f…]: message``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(req)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.req = f" [req {rid}]" if rid else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*_REQUEST_FIELDS, *ACCESS_FIELDS):
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def _iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def configure(log_format: str = "text", level: str = "info") -> None:
    """Replace the root logger's handlers with one on stderr in ``log_format``."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r} (known: {', '.join(LOG_FORMATS)})")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestFields())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    # aiohttp's own access logger is replaced by ours (``gateway.access``)
    logging.getLogger("aiohttp.access").propagate = False

"""Log lines carry the request they were caused by, also from tasks the
request started (backend calls), in both formats."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from gateway.observability import context
from gateway.observability.logs import JsonFormatter, RequestFields, TextFormatter


def _capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestFields())
    handler.setFormatter(formatter)
    logger = logging.getLogger("backends.test_logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_a_backend_line_in_a_task_of_the_request_carries_its_id() -> None:
    logger, stream = _capture(JsonFormatter())

    async def request() -> None:
        info = context.RequestInfo("req-42", "tus")
        token = context.CURRENT.set(info)
        try:
            context.annotate("u1", "default", "a/b.bin")

            async def store_call() -> None:
                logger.warning("S3 upload_part attempt %d failed", 1)

            await asyncio.get_running_loop().create_task(store_call())
        finally:
            context.CURRENT.reset(token)
        logger.info("outside any request")

    asyncio.run(request())
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["request_id"] == "req-42" and inside["protocol"] == "tus"
    assert inside["upload_id"] == "u1" and inside["bucket"] == "default"
    assert inside["key"] == "a/b.bin" and inside["level"] == "WARNING"
    assert inside["logger"] == "backends.test_logs"
    assert inside["message"] == "S3 upload_part attempt 1 failed"
    assert "request_id" not in outside and outside["message"] == "outside any request"


def test_text_lines_name_the_request_and_json_lines_the_exception() -> None:
    logger, stream = _capture(TextFormatter())
    token = context.CURRENT.set(context.RequestInfo("req-7", "qiniu"))
    try:
        logger.error("boom")
    finally:
        context.CURRENT.reset(token)
    assert " ERROR backends.test_logs [req req-7]: boom" in stream.getvalue()

    logger, stream = _capture(JsonFormatter())
    try:
        raise ValueError("the store said no")
    except ValueError:
        logger.exception("failed")
    line = json.loads(stream.getvalue())
    assert "ValueError: the store said no" in line["exception"]

"""Every S3 call reported to the backend's telemetry, from botocore's event
hooks on the client: one wrapping point for all of ``store.py``.

* operation: the API name in snake case (``upload_part``,
  ``complete_multipart_upload``, ``put_object``, …; a fixed set);
* outcome: ``ok`` (2xx/3xx), ``not_found`` (404), else ``error`` with the S3
  error code as the reason (``slow_down``, ``internal_error``, ``http_503``
  when there is none) or the transport failure's category;
* an attempt that botocore is about to retry is a WARNING (rate-limited);
  501 NotImplemented is an answer, not a failure to retry.

A call cancelled mid-flight is not reported (botocore emits nothing then).
"""

from __future__ import annotations

import re
import time
from typing import Any

from backends.telemetry import ERROR, NOT_FOUND, OK, BackendTelemetry, reason_of

_START = "upload_gateway_started"
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_CODE = re.compile(r"[A-Za-z]{1,40}")
_names: dict[str, str] = {}


def operation_name(api_name: str) -> str:
    name = _names.get(api_name)
    if name is None:
        name = _names[api_name] = _CAMEL.sub("_", api_name).lower()
    return name


def _reason(http: Any, parsed: Any) -> str:
    code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
    if isinstance(code, str) and _CODE.fullmatch(code):
        return operation_name(code)
    return f"http_{getattr(http, 'status_code', 0)}"


def watch(events: Any, telemetry: BackendTelemetry) -> None:
    """Register the hooks on an aiobotocore client's ``meta.events``."""

    def before_call(context: dict[str, Any], **_: Any) -> None:
        context[_START] = time.perf_counter()

    def after_call(http_response: Any, parsed: Any, model: Any, context: dict[str, Any],
                   **_: Any) -> None:  # fmt: skip
        seconds = time.perf_counter() - context.get(_START, time.perf_counter())
        operation = operation_name(model.name)
        status = http_response.status_code
        if status < 400:
            telemetry.request(operation, seconds, OK)
        elif status == 404:
            telemetry.request(operation, seconds, NOT_FOUND)
        else:
            telemetry.request(operation, seconds, ERROR)
            telemetry.error(operation, _reason(http_response, parsed))

    def after_call_error(exception: BaseException, context: dict[str, Any], **kwargs: Any) -> None:
        seconds = time.perf_counter() - context.get(_START, time.perf_counter())
        operation = operation_name(kwargs.get("event_name", "").rsplit(".", 1)[-1])
        telemetry.request(operation, seconds, ERROR)
        telemetry.error(operation, reason_of(exception))

    def needs_retry(attempts: int, operation: Any, response: Any = None,
                    caught_exception: BaseException | None = None, **_: Any) -> None:  # fmt: skip
        if caught_exception is not None:
            cause = reason_of(caught_exception)
        elif (
            response is not None
            and response[0].status_code >= 500
            and response[0].status_code != 501
        ):
            cause = _reason(response[0], response[1])
        else:
            return None
        name = operation_name(operation.name)
        telemetry.warn(
            f"s3-attempt:{name}:{cause}",
            "backend %s: S3 %s attempt %d failed (%s); botocore retries it if attempts remain",
            telemetry.backend,
            name,
            attempts,
            cause,
        )
        return None

    events.register("before-call.s3", before_call)
    events.register("after-call.s3", after_call)
    events.register("after-call-error.s3", after_call_error)
    events.register_first("needs-retry.s3", needs_retry)

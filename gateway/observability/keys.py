"""Typed application keys of the observability package."""

from __future__ import annotations

from aiohttp import web

from gateway.observability.metrics import Metrics
from gateway.observability.middleware import Observer

METRICS = web.AppKey("metrics", Metrics)
OBSERVER = web.AppKey("observer", Observer)

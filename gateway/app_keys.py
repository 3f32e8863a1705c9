"""Typed keys of the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from gateway.config import GatewayConfig
from gateway.core.service import UploadService

CONFIG = web.AppKey("config", GatewayConfig)
SERVICE = web.AppKey("service", UploadService)
#: the file the configuration came from ("": the embedded default)
CONFIG_PATH = web.AppKey("config_path", str)

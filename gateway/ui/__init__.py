"""The browser pages: the upload page (``/ui/``, ``page``) and the ops view
(``/ui/ops``, ``ops`` with ``live``). Their HTML, JavaScript and CSS are
plain files in ``static/`` — no CDN, no build step — served with a
Content-Security-Policy that allows this origin only."""

from __future__ import annotations

from aiohttp import web

from gateway.config import GatewayConfig


def setup(app: web.Application, config: GatewayConfig) -> None:
    from . import ops, page

    if config.ui.enabled:
        page.setup(app, config)
    if config.ui.ops_token:
        ops.setup(app, config)

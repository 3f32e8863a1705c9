"""``upload-gateway`` command line: serve, check-config, uploads, token, upload."""

from __future__ import annotations

import argparse
import gc
import sys

from aiohttp import web

from gateway.config import ConfigError, GatewayConfig, load_config_file
from gateway.observability import logs
from gateway.observability.summary import version
from gateway.uploads_cli import add_uploads_command


def _load(path: str | None) -> GatewayConfig:
    try:
        return load_config_file(path)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


#: bytes asyncio asks of a socket per read (its default: 256 KiB). Each read
#: is a new bytes object held until the body's consumer takes it; at 64 uploads
#: sending at once, 256 KiB reads peaked at 105 MiB RSS, 128 KiB at 90 MiB for
#: the same CPU (1.80 against 1.76 s/GiB), 64 KiB at 83 MiB but 2.2 s/GiB
#: (every chunk passes the parser, the body guard and the backend's loop).
SOCKET_READ_SIZE = 128 * 1024


def _limit_socket_reads() -> None:
    from asyncio import selector_events

    transport = getattr(selector_events, "_SelectorSocketTransport", None)
    if transport is not None and hasattr(transport, "max_size"):
        transport.max_size = SOCKET_READ_SIZE


#: allocations between collections of the young generation (Python's: 700).
#: A request allocates hundreds of short-lived containers: at 700, 400 tus
#: uploads of 1 MiB ran ~100 young and ~9 middle collections and one full one
#: (56 ms over 130,000 objects), 0.13–0.17 s in all; at 10,000, with start-up's
#: objects frozen, 6 young ones, 0.04–0.05 s (gc.callbacks, 2026-12-04).
GC_YOUNG_THRESHOLD = 10_000


def _tune_collector(app: web.Application) -> None:
    """Collect the young generation less often; once started, freeze what
    start-up made (configuration, the S3 client's models): it lives as long
    as the process, and full collections need not traverse it."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)

    async def freeze(_app: web.Application) -> None:
        gc.collect()
        gc.freeze()

    app.on_startup.append(freeze)


def serve(args: argparse.Namespace) -> int:
    from gateway.app import SHUTDOWN_TIMEOUT, create_app

    config = _load(args.config)
    server = config.server.model_copy(
        update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    )
    config = config.model_copy(update={"server": server})
    logs.configure(args.log_format, args.log_level)
    try:
        app = create_app(config, config_path=args.config, access_log=args.access_log)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    _limit_socket_reads()
    _tune_collector(app)
    try:
        web.run_app(
            app,
            host=server.host,
            port=server.port,
            access_log=None,  # the gateway's own (gateway.access), with request ids
            print=lambda msg: print(msg, flush=True),
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            keepalive_timeout=server.header_timeout,
        )
    except Exception as exc:  # start-up failures: a clear message, not a traceback
        from backends.errors import BackendError

        if isinstance(exc, BackendError):
            print(f"start-up failed: {exc}", file=sys.stderr)
            return 1
        raise
    return 0


def check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    names = ", ".join(f"{n} ({c['type']})" for n, c in config.backends.items())
    print(f"{args.config or '(embedded default)'}: OK — backends: {names}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="upload-gateway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"upload-gateway {version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway")
    p.add_argument("-c", "--config", help="config.yaml (default: the embedded default)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument(
        "--log-format", default="text", choices=logs.LOG_FORMATS, help="text, or JSON lines"
    )
    p.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a line per request (default on)",
    )
    p.set_defaults(func=serve)

    p = sub.add_parser("check-config", help="validate a config file and exit")
    p.add_argument("-c", "--config", required=True)
    p.set_defaults(func=check_config)

    from gateway.client.command import add_upload_command

    add_upload_command(sub)
    add_uploads_command(sub, _load)

    from gateway.access.cli import add_token_command

    add_token_command(sub, _load)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())

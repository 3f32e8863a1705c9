"""Loopback port and readiness helpers for the test-server launchers.

Everything binds to 127.0.0.1. Ports are chosen at run time by asking the
kernel for a free one; a tiny race with other processes remains, which the
launchers cover by retrying their start once.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Never route loopback checks through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerStartError(RuntimeError):
    """A launched server died or did not become ready in time."""


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return `count` distinct ports that are free on `host` right now."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)  # held open so the next bind gets another port
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(host: str = LOOPBACK) -> int:
    """Return one port that is free on `host` right now."""
    return free_ports(1, host)[0]


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path | None, lines: int = 30) -> str:
    """Last lines of a log file (for error messages); '' if unreadable."""
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def check_alive(procs: Sequence[subprocess.Popen[bytes]], what: str = "server") -> None:
    """Raise ServerStartError if any of `procs` has exited."""
    for p in procs:
        rc = p.poll()
        if rc is not None:
            raise ServerStartError(f"{what}: {p.args!r} exited with status {rc}")


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    procs: Sequence[subprocess.Popen[bytes]] = (),
    interval: float = 0.05,
) -> None:
    """Poll `predicate` until true; fail early if a process in `procs` dies."""
    deadline = time.monotonic() + timeout
    while True:
        check_alive(procs, what)
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise ServerStartError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


def wait_for_port(
    port: int,
    host: str = LOOPBACK,
    timeout: float = 30.0,
    procs: Sequence[subprocess.Popen[bytes]] = (),
) -> None:
    """Wait until host:port accepts connections."""
    wait_until(lambda: port_open(port, host), timeout, f"port {host}:{port}", procs)


def http_status(url: str, method: str = "GET", timeout: float = 2.0) -> int | None:
    """HTTP status of a request to `url` (no proxy), None if no answer."""
    req = urllib.request.Request(url, method=method)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, ValueError):
        return None


def wait_for_http(
    url: str,
    timeout: float = 30.0,
    ok: Callable[[int], bool] = lambda status: status < 500,
    procs: Sequence[subprocess.Popen[bytes]] = (),
    method: str = "GET",
) -> None:
    """Wait until `url` answers with a status accepted by `ok` (< 500 by default)."""

    def ready() -> bool:
        status = http_status(url, method)
        return status is not None and ok(status)

    wait_until(ready, timeout, url, procs)

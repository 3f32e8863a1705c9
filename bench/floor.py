"""The floor: the least CPU per GiB any gateway spends on this machine to
pass a part from its client to its store, and the best ratio against the
store driven directly that a gateway at the floor could reach in a run.

Two relays, each in a process of its own between a sender and a sink that
discards (both in other processes), measured by the relay's CPU seconds
(``/proc``) per GiB relayed, 8 MiB parts, 3 at a time (the Qiniu SDKs'
concurrency):

* ``socket``: 1 MiB ``recv_into`` / ``sendall`` on plain TCP sockets, one
  thread per part, no HTTP — what the kernel's copies and the hashes cost
  whatever the language and the framework;
* ``http``: an aiohttp server reading each request's body as it comes and
  an aiohttp client streaming it to the sink — the gateway's own stack with
  none of its logic.

Each relay hashes what passes with the hashes named (OpenSSL's, through
``hashlib``; ``crc32``: zlib's): ``sha1`` is the Qiniu qetag (the ``hash``
every Qiniu answer carries), ``sha256`` the whole-file digest the gateway
records (``digest: sha256``, the default). No design of a Qiniu gateway
that answers the protocol and records the digest spends less than the
``socket`` relay with ``sha1,sha256``.

On a machine whose CPUs the client, the gateway and the store share, a path
is CPU-bound once the sum of their CPU reaches CPUs × wall (``bench.run``'s
CPU table). A gateway at the floor then takes at least ``(client + store +
floor) / CPUs`` seconds per GiB, so its ratio against the baseline is at
most ``baseline CPUs × wall / (client + store + floor)`` — the *ceiling*
(``report.ceilings``), with the client's CPU measured on the gateway path
(the protocol's SDK) and the store's on the baseline (the store's own cost
of taking the bytes).

    .venv/bin/python -m bench.floor          # the floors on this machine
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.procstat import cpu_seconds
from bench.scenarios import Scenario
from gateway.core.checksums import Crc32
from testservers.ports import LOOPBACK, free_ports

MiB = 1 << 20
GiB = 1 << 30
PART = 8 * MiB
AT_ONCE = 3
#: the relays and hashes measured by ``floors()``
FLOORS: tuple[tuple[str, str], ...] = (
    ("socket", ""),
    ("socket", "sha256"),
    ("socket", "sha1,sha256"),
    ("socket", "md5"),
    ("http", ""),
    ("http", "sha1,sha256"),
)
_BUFFER = MiB
_HEAD_MAX = 64 * 1024


def _hashers(names: str) -> list[Any]:
    out: list[Any] = []
    for name in filter(None, names.split(",")):
        out.append(Crc32() if name == "crc32" else hashlib.new(name))
    return out


# -- the sink: reads every byte, answers each HTTP request once its body is in --------
class _Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.head = b""
        self.left: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.left is None:  # HTTP: read the head for the body's length
            self.head += data
            if b"\r\n\r\n" not in self.head:
                if len(self.head) > _HEAD_MAX:
                    self.transport.close()
                return
            head, rest = self.head.split(b"\r\n\r\n", 1)
            self.head = b""
            lengths = [
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]
            self.left = (lengths[0] if lengths else 0) - len(rest)
        else:
            self.left -= len(data)
        if self.left <= 0:
            self.left = None
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def _sink(port: int, http: bool) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        if http:
            await loop.create_server(_Sink, LOOPBACK, port)
        else:
            await loop.create_server(asyncio.Protocol, LOOPBACK, port)  # discards
        await asyncio.Event().wait()

    asyncio.run(serve())


# -- the relays ---------------------------------------------------------------------
def _socket_relay(port: int, to: int, hashes: str) -> None:
    """Each connection: its bytes to a new connection to the sink, hashed."""
    listener = socket.create_server((LOOPBACK, port))

    def relay(conn: socket.socket) -> None:
        hashers = _hashers(hashes)
        buf = bytearray(_BUFFER)
        view = memoryview(buf)
        with conn, socket.create_connection((LOOPBACK, to)) as out:
            while n := conn.recv_into(buf):
                for h in hashers:
                    h.update(view[:n])
                out.sendall(view[:n])
            conn.sendall(b"k")  # the part is passed on

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=relay, args=(conn,), daemon=True).start()


def _http_relay(port: int, to: int, hashes: str) -> None:
    from aiohttp import ClientSession, TCPConnector, web

    session_key = web.AppKey("session", ClientSession)

    async def handle(request: web.Request) -> web.Response:
        hashers = _hashers(hashes)

        async def body() -> AsyncIterator[bytes]:
            while chunk := await request.content.readany():
                for h in hashers:
                    h.update(chunk)
                yield chunk

        headers = {"Content-Length": str(request.content_length or 0)}
        async with request.app[session_key].put(
            f"http://{LOOPBACK}:{to}/part", data=body(), headers=headers
        ) as resp:
            await resp.read()
        return web.Response(text="ok")

    async def serve() -> None:
        app = web.Application(client_max_size=GiB)
        app[session_key] = ClientSession(connector=TCPConnector(limit=0))
        app.router.add_put("/part", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, LOOPBACK, port).start()
        await asyncio.Event().wait()

    asyncio.run(serve())


# -- the sender ---------------------------------------------------------------------
def _send_socket(port: int, data: bytes) -> None:
    with socket.create_connection((LOOPBACK, port)) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        if s.recv(1) != b"k":
            raise RuntimeError("the socket relay did not pass the part on")


def _send_http(port: int, data: bytes) -> None:
    head = f"PUT /part HTTP/1.1\r\nHost: {LOOPBACK}\r\nContent-Length: {len(data)}\r\n"
    with socket.create_connection((LOOPBACK, port)) as s:
        s.sendall(head.encode() + b"Connection: close\r\n\r\n")
        s.sendall(data)
        answer = s.recv(_HEAD_MAX)
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"the http relay answered {answer[:60]!r}")


def measure(kind: str, hashes: str, gib: float = 1.0) -> float:
    """The ``kind`` relay's CPU seconds per GiB relayed with ``hashes``."""
    sink_port, relay_port = free_ports(2)
    me = [sys.executable, "-m", "bench.floor"]
    relay = [*me, "relay", "--kind", kind, "--hashes", hashes, "--port", str(relay_port)]
    procs = [subprocess.Popen([*me, "sink", "--port", str(sink_port), "--kind", kind])]
    try:
        procs.append(subprocess.Popen([*relay, "--to", str(sink_port)]))
        _wait_listening(relay_port, procs)
        _wait_listening(sink_port, procs)
        send: Callable[[int, bytes], None] = _send_socket if kind == "socket" else _send_http
        data = bytes(range(256)) * (PART // 256)
        parts = max(1, round(gib * GiB / PART))
        send(relay_port, data)  # warm up: imports, first connection
        before = cpu_seconds(procs[1].pid)
        with ThreadPoolExecutor(AT_ONCE) as pool:
            list(pool.map(lambda _: send(relay_port, data), range(parts)))
        return (cpu_seconds(procs[1].pid) - before) / (parts * PART / GiB)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def _wait_listening(port: int, procs: Sequence[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a floor process exited at start")
        try:
            socket.create_connection((LOOPBACK, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@dataclass(frozen=True)
class Model:
    """What any gateway must do with a scenario's bytes: the ``hashes`` on
    all of them; a ``resent`` fraction sent to the store a second time (and
    taken by it twice); an ``md5`` fraction hashed with MD5 by the gateway
    itself (a client's Content-MD5 the store cannot check)."""

    hashes: str
    resent: float = 0.0
    md5: float = 0.0

    def floor(self, floors: dict[str, float]) -> float | None:
        """The least gateway CPU s/GiB for this model, from ``floors()``."""
        try:
            cost = floors[name("socket", self.hashes)]
            if self.resent or self.md5:
                bare = floors["socket"]
                cost += self.resent * bare + self.md5 * (floors[name("socket", "md5")] - bare)
        except KeyError:
            return None
        return cost


def model_of(sc: Scenario) -> Model | None:
    """The model of ``sc``, if a relay of parts models it: tus / IETF (the
    digest); Qiniu v2 (qetag and digest) with parts of 8 MiB and more, or of
    4 MiB sent in order (the odd part stored on its own before it is
    acknowledged, then again with the even one, whose MD5 only the gateway
    can check). Not Qiniu form files (one request each: request costs lead)
    or v1 blocks (their key is known only at mkfile)."""
    if sc.kind in ("tus", "ietf"):
        return Model("sha256")
    if sc.kind == "qiniu-v2" and sc.part >= PART:
        return Model("sha1,sha256")
    if sc.kind == "qiniu-v2" and sc.part * 2 >= PART:
        return Model("sha1,sha256", resent=0.5, md5=0.5)
    return None


def floors(gib: float = 1.0) -> dict[str, float]:
    """Each of ``FLOORS``' relays, named ``kind+hashes``: CPU s/GiB."""
    return {name(kind, hashes): measure(kind, hashes, gib) for kind, hashes in FLOORS}


def name(kind: str, hashes: str) -> str:
    return f"{kind}+{hashes}" if hashes else kind


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.floor", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    sink = sub.add_parser("sink")
    sink.add_argument("--port", type=int, required=True)
    sink.add_argument("--kind", choices=("socket", "http"), required=True)
    relay = sub.add_parser("relay")
    relay.add_argument("--kind", choices=("socket", "http"), required=True)
    relay.add_argument("--hashes", default="")
    relay.add_argument("--port", type=int, required=True)
    relay.add_argument("--to", type=int, required=True)
    ap.add_argument("--gib", type=float, default=1.0, help="GiB relayed per measurement")
    a = ap.parse_args(argv)
    if a.cmd == "sink":
        _sink(a.port, a.kind == "http")
    elif a.cmd == "relay":
        if a.kind == "socket":
            _socket_relay(a.port, a.to, a.hashes)
        else:
            _http_relay(a.port, a.to, a.hashes)
    else:
        print("| relay | hashes | relay CPU s/GiB |\n|---|---|---|")
        for kind, hashes in FLOORS:
            print(f"| {kind} | {hashes or '–'} | {measure(kind, hashes, a.gib):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

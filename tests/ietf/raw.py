"""A raw HTTP/1.1 client that shows every response to a request — the
interim ones (``104 Upload Resumption Supported``) too, which requests,
http.client and aiohttp's client all swallow or mistake for the final one."""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Message:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""


@dataclass
class Exchange:
    interim: list[Message] = field(default_factory=list)
    final: Message | None = None

    @property
    def status(self) -> int:
        assert self.final is not None, "no final response"
        return self.final.status

    @property
    def headers(self) -> dict[str, str]:
        assert self.final is not None, "no final response"
        return self.final.headers


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def line(self) -> bytes | None:
        while b"\r\n" not in self.buf:
            if not self._fill():
                return None
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n and self._fill():
            pass
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _read_message(reader: _Reader, method: str) -> Message | None:
    status_line = reader.line()
    if not status_line:
        return None
    status = int(status_line.split(b" ", 2)[1])
    headers: dict[str, str] = {}
    while True:
        line = reader.line()
        if not line:
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if status >= 200 and method != "HEAD" and status not in (204, 304):
        body = reader.exactly(int(headers.get("content-length", "0")))
    return Message(status, headers, body)


def _send(sock: socket.socket, head: bytes, payload: bytes, trickle: float) -> None:
    if not trickle:
        sock.sendall(head + payload)
        return
    sock.sendall(head)
    for i in range(0, len(payload), 128 * 1024):
        sock.sendall(payload[i : i + 128 * 1024])
        time.sleep(trickle)


def request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    send_only: int | None = None,
    await_interim: bool = False,
    stall: bool = False,
    chunked: bool = False,
    http10: bool = False,
    trickle: float = 0,
    timeout: float = 30,
) -> Exchange:
    """Send one request and read every response to it. ``send_only``: send
    that many body bytes of a ``Content-Length`` body, then shut the
    connection (a client cut off mid-request); what came back by then is
    returned (with ``await_interim``, after the first interim response
    arrived; with ``stall``, the connection stays open and silent and every
    answer is read). ``trickle``: send the body 128 KiB at a time, pausing that many
    seconds in between; a server that answers early ends the sending (a reset
    that overtakes its answer leaves ``final`` None). ``chunked``: send the body as one chunk, without a length."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [
        f"{method} {path} HTTP/{'1.0' if http10 else '1.1'}",
        f"Host: {parts.netloc}",
        "Connection: close",
    ]
    for name, value in (headers or {}).items():
        head.append(f"{name}: {value}")
    if chunked:
        head.append("Transfer-Encoding: chunked")
        payload = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        if body or method in ("POST", "PATCH", "PUT"):
            head.append(f"Content-Length: {len(body)}")
        payload = body
    raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
    exchange = Exchange()
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
        reader = _Reader(sock)
        if send_only is not None and stall:
            sock.sendall(raw + payload[:send_only])
            payload, raw = b"", b""  # then silence, reading whatever comes back
        elif send_only is not None:
            sock.sendall(raw + payload[:send_only])
            if await_interim:  # the 104 goes out before the body is read
                message = _read_message(reader, method)
                if message is not None:
                    exchange.interim.append(message)
            sock.shutdown(socket.SHUT_RDWR)
            return exchange
        with contextlib.suppress(OSError):  # the server answered early and closed
            _send(sock, raw, payload, trickle)
        while True:
            try:
                message = _read_message(reader, method)
            except OSError:
                break
            if message is None:
                break
            if message.status < 200:
                exchange.interim.append(message)
                continue
            exchange.final = message
            break
    return exchange

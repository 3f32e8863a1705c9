"""Raw HTTP/1.1 over a socket, for requests no client library will send."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


def exchange(url: str, head: str, body: bytes = b"", timeout: float = 15) -> tuple[int, bytes]:
    """Send ``head`` (request line + headers, without the blank line) and
    ``body`` to ``url``'s host; return the status and the whole answer.
    A connection closed without an answer is status 0."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.encode("utf-8", "surrogateescape") + b"\r\n\r\n" + body)
        sock.settimeout(timeout)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and _complete(answer):
                    break
        except ConnectionResetError:
            pass
    if not answer.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")):
        return 0, answer
    return int(answer[9:12]), answer


def _complete(answer: bytes) -> bool:
    head, _, rest = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(rest) >= int(value.strip())
    return False


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")

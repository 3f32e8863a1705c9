"""What the fuzz suite (``test_fuzz.py``) generates and how it sends it.

Requests go out as raw bytes over a socket (no client library would send a
5,000-digit header, a key with a NUL or a broken chunk), one request per
connection, and the answer is read until the server closes it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import socket
import string
import time
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tests.qiniu.harness import AK, SK

#: how long one request may take before the gateway counts as hanging
REQUEST_DEADLINE = 20.0

# -- sending ---------------------------------------------------------------------


@dataclass
class Request:
    method: str
    target: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    #: a chunked body as sent (framing included), instead of ``body``
    chunked: bytes | None = None

    def encode(self) -> bytes:
        lines = [self.method.encode() + b" " + self.target + b" HTTP/1.1", b"Host: 127.0.0.1"]
        lines += [name + b": " + value for name, value in self.headers]
        lines.append(b"Connection: close")
        if self.chunked is not None:
            lines.append(b"Transfer-Encoding: chunked")
            payload = self.chunked
        else:
            lines.append(b"Content-Length: " + str(len(self.body)).encode())
            payload = self.body
        return b"\r\n".join(lines) + b"\r\n\r\n" + payload


@dataclass
class Reply:
    status: int
    head: bytes
    body: bytes
    seconds: float

    @property
    def raw(self) -> bytes:
        return self.head + b"\r\n\r\n" + self.body


def send(port: int, request: Request) -> Reply:
    """Send ``request``; the final answer (1xx skipped). Raises
    ``TimeoutError`` past ``REQUEST_DEADLINE``: the gateway hangs."""
    started = time.monotonic()
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_DEADLINE) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request.encode())  # may be answered and closed before it is all read
        while True:
            if time.monotonic() - started > REQUEST_DEADLINE:
                raise TimeoutError(
                    f"no complete answer in {REQUEST_DEADLINE} s: {request!r}"[:3000]
                )
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                raise TimeoutError(
                    f"no complete answer in {REQUEST_DEADLINE} s: {request!r}"[:3000]
                ) from None
            if not chunk:
                break
            data += chunk
    seconds = time.monotonic() - started
    while data.startswith(b"HTTP/1.1 1"):  # an interim answer
        data = data.partition(b"\r\n\r\n")[2]
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head[9:12]) if head[:5] == b"HTTP/" and head[9:12].isdigit() else 0
    return Reply(status, head, body, seconds)


# -- generating ------------------------------------------------------------------

HOSTILE_NUMBERS = [
    "",
    "-1",
    "+5",
    "²",
    "١٠",
    "9" * 5000,
    "1e3",
    "1e400",
    " 7",
    "0x10",
    "00012",
    "18446744073709551616",
    "9223372036854775808",
    "NaN",
]
HOSTILE_TEXT = [
    "../../etc/passwd",
    "..%2f..%2fsecret",
    "%2e%2e/%2e%2e/secret.txt",
    "x/../victim",
    "a\nb",
    "a\r\nX-Injected: 1",
    "nul\x00byte",
    "/" * 300,
    "k" * 1100,
    "text/html",
    "image/svg+xml",
    "<script>alert(1)</script>",
    "$(key)$(fname)$(x:a)",
    "\u202egnp.exe",
    "\ud800",
    "",
]

numbers = st.one_of(
    st.integers(min_value=0, max_value=2**70).map(str),
    st.sampled_from(HOSTILE_NUMBERS),
    st.text(alphabet="0123456789-+ e.", max_size=12),
)
any_text = st.one_of(st.text(max_size=80), st.sampled_from(HOSTILE_TEXT))
#: bytes for a header value: anything but CR/LF, which would end the header
header_values = st.one_of(
    numbers,
    any_text.map(lambda t: t.replace("\r", "").replace("\n", "")),
    st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)
bodies = st.one_of(st.binary(max_size=2048), st.just(b""))
BAD_CHUNKINGS = [
    b"1" * 20000 + b"\r\n",
    b"zz\r\nabc\r\n0\r\n\r\n",
    b"-5\r\nabcde\r\n0\r\n\r\n",
    b"3\r\nabcXX0\r\n\r\n",
    b"3;" + b"e" * 10000 + b"\r\nabc\r\n0\r\n\r\n",
    b"3\r\nabc\r\n0\r\nTrailer-Bad\r\n\r\n",
]


def _header_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def chunked(body: bytes) -> bytes:
    """``body`` as one well-formed chunk and the last chunk."""
    return (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"


@st.composite
def framing(draw: st.DrawFn, body: bytes) -> bytes | None:
    """None (Content-Length), a well-formed chunked body, or a broken one."""
    kind = draw(st.sampled_from(["length", "length", "chunked", "broken"]))
    if kind == "length":
        return None
    if kind == "chunked":
        return chunked(body)
    return draw(st.sampled_from(BAD_CHUNKINGS))


TUS_HEADERS = [
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Offset",
    "Upload-Defer-Length",
    "Upload-Metadata",
    "Upload-Concat",
    "Upload-Checksum",
    "Content-Type",
    "X-HTTP-Method-Override",
    "Range",
    "Trailer",
    "Forwarded",
    "X-Forwarded-Host",
    "Origin",
    "Authorization",
]
#: the IETF protocol shares the path: these make a request its
IETF_HEADERS = [
    "Upload-Draft-Interop-Version",
    "Upload-Complete",
    "Upload-Incomplete",
    "Upload-Limit",
    "Repr-Digest",
    "Content-Digest",
]
IETF_VALUES = [b"9", b"8", b"6", b"3", b"99", b"?0", b"?1", b"?2", b"sha-256=:AAAA:", b"sha-256=:"]


@st.composite
def metadata_header(draw: st.DrawFn) -> bytes:
    pairs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["filename", "filetype", "name", "mimeType", "k", "a b", ""]),
                any_text,
            ),
            max_size=4,
        )
    )
    parts = []
    for key, value in pairs:
        encoded = base64.b64encode(value.encode("utf-8", "surrogatepass")).decode()
        parts.append(f"{key} {draw(st.sampled_from([encoded, encoded[:-1], '!!']))}")
    return ",".join(parts).encode()


@st.composite
def tus_headers(draw: st.DrawFn, known_urls: list[str]) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    if draw(st.booleans()):
        headers.append((b"Tus-Resumable", b"1.0.0"))
    names = st.sampled_from(TUS_HEADERS + IETF_HEADERS)
    for name in draw(st.lists(names, max_size=6, unique=True)):
        if name == "Upload-Metadata":
            value = draw(metadata_header())
        elif name == "Upload-Concat":
            urls = " ".join(
                draw(st.lists(st.sampled_from([*known_urls, "/files/nope", "x"]), max_size=3))
            )
            value = draw(st.sampled_from([b"partial", b"final;" + urls.encode(), b"final;"]))
        elif name == "Upload-Checksum":
            value = draw(
                st.sampled_from([b"sha1 ", b"md5 AAAA", b"crc32 ", b"nope x"])
            ) + _header_bytes(draw(header_values))
        elif name == "Content-Type":
            value = draw(
                st.sampled_from([b"application/offset+octet-stream", b"text/plain"])
                | header_values.map(_header_bytes)
            )
        elif name == "X-HTTP-Method-Override":
            value = draw(st.sampled_from([b"PATCH", b"DELETE", b"HEAD", b"GET", b"PUT"]))
        elif name == "Range":
            value = b"bytes=" + _header_bytes(draw(numbers)) + b"-" + _header_bytes(draw(numbers))
        elif name in IETF_HEADERS:
            value = draw(st.sampled_from(IETF_VALUES) | header_values.map(_header_bytes))
        else:
            value = _header_bytes(draw(header_values))
        headers.append((name.encode(), value))
    return headers


PATH_JUNK = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=40),
    st.sampled_from(["..", "%2e%2e", "../secret.txt", "%2F..%2F", ".", "a/b", "%00", "%0d%0a"]),
)


def path_bytes(text: str) -> bytes:
    """A request target as a hostile client writes it: spaces and controls
    escaped (they would end the request line), everything else raw."""
    out = text.encode("utf-8", "surrogatepass")
    for raw, escaped in ((b" ", b"%20"), (b"\t", b"%09"), (b"\r", b"%0D"), (b"\n", b"%0A")):
        out = out.replace(raw, escaped)
    return bytes(c if c >= 0x20 and c != 0x7F else ord("_") for c in out) or b"/"


# -- Qiniu -------------------------------------------------------------------------


def sign_policy(policy_json: str) -> str:
    encoded = base64.urlsafe_b64encode(policy_json.encode("utf-8", "surrogatepass")).decode()
    signature = hmac.new(SK.encode(), encoded.encode(), hashlib.sha1).digest()
    return f"{AK}:{base64.urlsafe_b64encode(signature).decode()}:{encoded}"


policy_values: st.SearchStrategy[Any] = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, float("inf"), 1e300, 1.5, True, None, [], {}, "1e400"]),
    any_text,
    numbers,
)
POLICY_FIELDS = [
    "fsizeLimit",
    "fsizeMin",
    "deleteAfterDays",
    "insertOnly",
    "detectMime",
    "mimeLimit",
    "saveKey",
    "forceSaveKey",
    "returnBody",
    "returnUrl",
    "callbackUrl",
    "callbackBody",
    "callbackBodyType",
    "callbackHost",
    "endUser",
    "isPrefixalScope",
    "keylimit",
]


@st.composite
def upload_tokens(draw: st.DrawFn, keys: st.SearchStrategy[str]) -> str:
    """A token signed with the test keys over a generated put policy (or a
    broken token now and then)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["", "garbage", f"{AK}:sig:{'A' * 20}", "a:b:c:d"]))
    scope = draw(
        st.sampled_from(["photos", "default", "nope", ""]) | keys.map(lambda k: f"photos:{k}")
    )
    policy: dict[str, Any] = {"scope": scope, "deadline": int(time.time()) + 3600}
    if draw(st.integers(0, 4)) == 0:
        policy["deadline"] = draw(policy_values)
    for name in draw(st.lists(st.sampled_from(POLICY_FIELDS), max_size=4, unique=True)):
        if name == "callbackUrl":
            policy[name] = draw(
                st.sampled_from(
                    ["http://[::1", "http://127.0.0.1:9/cb", "ftp://x/", "http://x:99999/"]
                )
            )
        else:
            policy[name] = draw(policy_values)
    return sign_policy(json.dumps(policy, allow_nan=True))


def b64(text: str | bytes) -> str:
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode()


def multipart(fields: list[tuple[str, bytes]], file: bytes | None, boundary: str) -> bytes:
    out = b""
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value + b"\r\n"
    if file is not None:
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + file
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()

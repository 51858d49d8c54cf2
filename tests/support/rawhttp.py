"""HTTP/1.1 over a plain socket: for bytes that well-behaved clients refuse to send (NUL or
invalid UTF-8 in a header, a header twice, a raw path)."""

import http.client
import json
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def send(
    base: str,
    method: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    *,
    source_address: str | None = None,
) -> RawResponse:
    url = urlsplit(base)
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"host: " + url.netloc.encode()]
    lines += [name + b": " + value for name, value in headers]
    if body or method == "POST":
        lines.append(b"content-length: " + str(len(body)).encode())
    lines.append(b"connection: close")
    payload = b"\r\n".join(lines) + b"\r\n\r\n" + body
    source = (source_address, 0) if source_address else None
    with socket.create_connection((url.hostname, url.port), timeout=10, source_address=source) as s:
        s.sendall(payload)
        response = http.client.HTTPResponse(s)
        response.begin()
        data = response.read()
        return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

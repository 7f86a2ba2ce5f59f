"""A fault-injecting HTTP reverse proxy for testing S3 clients against a flaky network.

Sits on loopback between boto3 and an S3 server (moto) and, on a seeded share of requests,
misbehaves the way S3 and networks do:

``slowdown``  answer ``503 SlowDown`` with S3's XML error body (throttling), without forwarding;
``internal``  answer ``500 InternalError``, without forwarding;
``reset``     drop the connection without any response (TCP RST), without forwarding;
``truncate``  forward a GET, send the status, headers and only part of the body, then RST.

Everything else is forwarded unchanged, so the proxy also serves as a request counter
(:attr:`FaultProxy.requests`) for tests that check how many requests an operation makes.

Decisions come from ``random.Random(seed)`` drawn in request-arrival order, so a sequential
client sees the same faults on every run; concurrent clients (multipart transfers) see the same
sequence of decisions, spread over requests in arrival order.

    with FaultProxy(server.endpoint_url, rate=0.25, seed=7) as proxy:
        store = open_store("s3://bucket/x", StorageOptions(endpoint_url=proxy.url))
        ...
        assert proxy.faults["truncate"] > 0

The ``fault_proxy`` fixture below starts proxies in front of the ``s3_server`` fixture's moto
server and stops them at teardown; a conftest registers it by importing it.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import random
import socket
import socketserver
import struct
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any

import pytest

FAULT_KINDS = ("slowdown", "internal", "reset", "truncate")
_ERROR_BODIES = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
}
# Headers that describe one hop, not the message; never forwarded as they are.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
_SOCKET_TIMEOUT_S = 30.0
_MAX_BODY = 256 * 1024 * 1024  # a test proxy, not a streaming one: bound what it buffers

RequestFilter = Callable[[str, str], bool]


class FaultProxy:
    """A threaded reverse proxy on 127.0.0.1 that injects faults into a share of requests.

    Args:
        upstream: base URL of the real server, e.g. ``http://127.0.0.1:5000``.
        rate: probability in ``[0, 1]`` that a matching request is faulted.
        seed: seed of the decisions.
        kinds: the faults to draw from (uniformly); ``truncate`` applies only to GETs, other
            requests draw from the remaining kinds.
        match: ``(method, path_with_query) -> bool`` choosing which requests may be faulted;
            all by default.
        max_faults: stop injecting after this many faults (``None``: no limit).
    """

    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.25,
        seed: int = 0,
        kinds: Iterable[str] = FAULT_KINDS,
        match: RequestFilter | None = None,
        max_faults: int | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or parsed.hostname is None or parsed.port is None:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream = (parsed.hostname, parsed.port)
        self.max_faults = max_faults
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.rate: float
        self.kinds: tuple[str, ...]
        self.match: RequestFilter | None
        self.configure(rate, kinds=kinds, match=match)
        #: faults injected, by kind
        self.faults: collections.Counter[str] = collections.Counter()
        #: requests received, by method (faulted ones included)
        self.requests: collections.Counter[str] = collections.Counter()
        #: the latest decisions in arrival order: (method, path, fault or None)
        self.history: collections.deque[tuple[str, str, str | None]] = collections.deque(
            maxlen=10_000
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy's base URL; use it as the client's endpoint."""
        if self._server is None:
            raise RuntimeError("proxy not started")
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def start(self) -> FaultProxy:
        """Listen on a free loopback port and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("proxy already started")
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection; returns once the server is down."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_all()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- decisions -----------------------------------------------------------------------------

    def configure(
        self,
        rate: float,
        *,
        kinds: Iterable[str] = FAULT_KINDS,
        match: RequestFilter | None = None,
    ) -> None:
        """Replace what is injected, e.g. rate 0 to set data up, then faults for the operation."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        kinds = tuple(kinds)
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown or not kinds:
            raise ValueError(f"kinds must be a non-empty subset of {FAULT_KINDS}, got {kinds}")
        with self._lock:
            self.rate, self.kinds, self.match = rate, kinds, match

    def _decide(self, method: str, path: str) -> tuple[str, float] | None:
        """The fault for this request (and, for ``truncate``, the share of body to send)."""
        with self._lock:
            self.requests[method] += 1
            decision = self._draw(method, path)
            self.history.append((method, path, decision[0] if decision else None))
            if decision:
                self.faults[decision[0]] += 1
            return decision

    def _draw(self, method: str, path: str) -> tuple[str, float] | None:
        if self.match is not None and not self.match(method, path):
            return None
        if self.max_faults is not None and self.faults.total() >= self.max_faults:
            return None
        # Always draw all numbers so the sequence does not depend on the outcomes.
        roll, pick, share = self._rng.random(), self._rng.random(), self._rng.random()
        kinds = self.kinds if method == "GET" else tuple(k for k in self.kinds if k != "truncate")
        if roll >= self.rate or not kinds:
            return None
        return kinds[int(pick * len(kinds))], share


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], proxy: FaultProxy
    ) -> None:
        self.proxy = proxy
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        # Keep-alive handler threads block reading their client; closing the sockets ends them.
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _SOCKET_TIMEOUT_S
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test output is no place for an access log

    # BaseHTTPRequestHandler dispatches on do_<METHOD>.
    def do_GET(self) -> None:
        self._proxy()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    # trailers (aws-chunked sends checksums there), then the blank line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > _MAX_BODY:
                    raise ValueError("request body too large for the test proxy")
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ValueError("request body too large for the test proxy")
        return self.rfile.read(length) if length else b""

    def _reset(self) -> None:
        # SO_LINGER 0: close() sends RST instead of FIN, as a crashed peer or a load balancer
        # dropping the connection would.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.close()

    def _send_error_xml(self, kind: str) -> None:
        status, code, message = _ERROR_BODIES[kind]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Resource>{self.path}</Resource><RequestId>faultproxy</RequestId></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _proxy(self) -> None:
        body = self._read_body()
        proxy = self.server.proxy
        decision = proxy._decide(self.command, self.path)
        fault, share = decision if decision is not None else (None, 0.0)
        if fault in _ERROR_BODIES:
            self._send_error_xml(fault)
            return
        if fault == "reset":
            self._reset()
            return

        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection(*proxy.upstream, timeout=_SOCKET_TIMEOUT_S)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            out_headers = response.getheaders()
            status, reason = response.status, response.reason
        finally:
            upstream.close()

        self.send_response(status, reason)
        for name, value in out_headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if self.command == "HEAD":
            # No body, but the length of the body a GET would return.
            length = response.getheader("Content-Length")
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault == "truncate" and status in (200, 206) and len(data) >= 2:
            cut = 1 + int(share * (len(data) - 1))
            self.wfile.write(data[:cut])
            self._reset()
            return
        self.wfile.write(data)


@pytest.fixture
def fault_proxy(s3_server: Any) -> Iterator[Callable[..., FaultProxy]]:
    """Start fault proxies in front of the moto server: ``fault_proxy(rate=..., seed=...)``.

    Every proxy a test starts is stopped at its teardown.
    """
    started: list[FaultProxy] = []

    def start(**kwargs: Any) -> FaultProxy:
        proxy = FaultProxy(s3_server.endpoint_url, **kwargs).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()

"""Outbound clients keep their connections alive, and keep one for every thread that calls at once.

A local HTTP/1.1 server counts the connections it accepts; the clients talk to it over
real sockets (no mocked transport), so a connection that was not reused shows as a new one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from flask_psp_connector.auth.introspection import RemoteIntrospector
from flask_psp_connector.http.outbound import untrusting

AT_ONCE = 12  # more than requests' default of 10 connections kept per host


class CountingServer(ThreadingHTTPServer):
    """Answers every request with ``{"active": true}``; counts connections; can hold requests
    until ``AT_ONCE`` of them are in flight, so that they need as many connections at once."""

    daemon_threads = True

    def __init__(self) -> None:
        self.connections = 0
        self.lock = threading.Lock()
        self.barrier: threading.Barrier | None = None
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CountingServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.barrier is not None:
            self.server.barrier.wait(timeout=10)
        body = json.dumps({"active": True, "scope": "manage_project:p"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def server() -> Iterator[CountingServer]:
    server = CountingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_introspections_reuse_one_kept_alive_connection(server: CountingServer) -> None:
    introspector = RemoteIntrospector(f"{server.url}/oauth/introspect", "client", "secret")
    assert introspector.introspect("token-1")["active"] is True
    assert introspector.introspect("token-2")["active"] is True
    assert server.connections == 1


def test_a_session_keeps_a_connection_for_every_call_made_at_once(server: CountingServer) -> None:
    session = untrusting(requests.Session())
    server.barrier = threading.Barrier(AT_ONCE)

    def call(_: int) -> int:
        return session.get(f"{server.url}/v1/ping", timeout=10).status_code

    with ThreadPoolExecutor(AT_ONCE) as pool:
        assert list(pool.map(call, range(AT_ONCE))) == [200] * AT_ONCE
        assert server.connections == AT_ONCE
        assert list(pool.map(call, range(AT_ONCE))) == [200] * AT_ONCE
    assert server.connections == AT_ONCE  # the second wave found every connection in the pool

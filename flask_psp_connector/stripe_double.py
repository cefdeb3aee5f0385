"""A local Stripe API double (localstripe) bound to 127.0.0.1, for offline work and tests.

``python -m flask_psp_connector.stripe_double --port 8420`` serves it; localstripe's own
command line listens on every interface and persists to a shared file, which this
launcher avoids. Requires the ``sandbox`` extra. Never used with real keys.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_stripe_double(port: int | None = None, *, timeout: float = 15) -> Iterator[str]:
    """Start localstripe in a subprocess and yield its base URL; stop it afterwards."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", __name__, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                requests.get(f"{base}/v1/customers", auth=("sk_test_probe", ""), timeout=0.5)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("The local Stripe double did not start.") from None
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()


def main(argv: list[str] | None = None) -> None:
    """Serve localstripe on ``--host``/``--port`` without on-disk persistence."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    args = parser.parse_args(argv)

    from aiohttp import web
    from localstripe import resources, server

    resources.Store.dump_to_disk = lambda self: None  # keep state in memory only
    web.run_app(server.app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()

"""gunicorn serving ``tests/wsgi_app.py`` (the connector alone, configured by the environment)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from flask_psp_connector.testing import free_port

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def gunicorn(env: dict[str, str], *options: str) -> Iterator[str]:
    """Start gunicorn with ``options`` (workers, threads...) and ``env`` added to the
    environment; yield its base URL once it answers; stop it afterwards."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *options, "--bind", f"127.0.0.1:{port}", "--no-control-socket",
         "--log-level", "warning", "tests.wsgi_app:create_app()"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/openapi.json", timeout=5)
                break
            except requests.RequestException:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(10)

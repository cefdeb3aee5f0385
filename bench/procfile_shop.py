"""The demo shop as the Procfile runs it, for the benches that measure it served.

``release:`` first (``flask --app demo_shop psp init-db``), then ``web:`` (gunicorn with
``gunicorn.conf.py``), both with the given interpreter and environment, from the checkout.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def release(python: str, env: dict[str, str]) -> None:
    """The Procfile's ``release:`` step: the store's tables, upgraded."""
    subprocess.run([python, "-m", "flask", "--app", "demo_shop", "psp", "init-db"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def web(python: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """The Procfile's ``web:`` process on ``env["PORT"]``, once it answers; stopped afterwards."""
    server = subprocess.Popen([python, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--access-logfile",
                               os.devnull, "demo_shop:create_app()"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if requests.get(f"http://127.0.0.1:{env['PORT']}/", timeout=2).status_code < 500:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield server
    finally:
        server.terminate()
        server.wait(10)

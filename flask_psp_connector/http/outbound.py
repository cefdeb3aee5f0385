"""HTTP sessions that read their proxy and CA settings from the environment once.

``requests`` with ``trust_env`` scans the whole process environment for proxy settings
on every request. The connector's clients call the same few hosts for the life of the
process, so each origin's settings are read on its first call and kept: the same
proxies, ``NO_PROXY`` exceptions and CA bundle (``REQUESTS_CA_BUNDLE``,
``CURL_CA_BUNDLE``) as before, without the per-call scan. ``.netrc`` is not read (every
client here sends its own credentials).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import requests


class EnvironmentSettings:
    """``proxies`` and ``verify`` for a URL, as ``requests`` would take them from the
    environment, read once per origin."""

    def __init__(self) -> None:
        self._origins: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str) -> dict[str, Any]:
        """The keyword arguments (``proxies``, ``verify``) to send a request to ``url`` with."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}/"
        found = self._origins.get(origin)
        if found is None:
            read = requests.Session().merge_environment_settings(origin, {}, None, None, None)
            found = {"proxies": dict(read["proxies"]), "verify": read["verify"]}
            with self._lock:
                self._origins[origin] = found
        return {"proxies": dict(found["proxies"]), "verify": found["verify"]}


def untrusting(session: requests.Session) -> requests.Session:
    """``session`` set not to scan the environment on each request (see the module doc)."""
    session.trust_env = False
    return session

"""HTTP sessions that read their proxy and CA settings from the environment once.

``requests`` with ``trust_env`` scans the whole process environment for proxy settings
on every request. The connector's clients call the same few hosts for the life of the
process, so each origin's settings are read on its first call and kept: the same
proxies, ``NO_PROXY`` exceptions and CA bundle (``REQUESTS_CA_BUNDLE``,
``CURL_CA_BUNDLE``) as before, without the per-call scan. ``.netrc`` is not read (every
client here sends its own credentials).

Each client keeps one session for its life, shared by every thread, and
:func:`untrusting` gives it connection pools wide enough for all of them: ``requests``
keeps only 10 connections per host, so in a worker with more threads the calls beyond
the tenth would each open (and then close) a connection of their own.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

#: Idle connections kept per host: more than a worker runs threads (gunicorn.conf.py), so
#: every connection that served a call is kept for the next one. Only connections that
#: were needed at once are ever opened, so the figure costs nothing when it is not reached.
CONNECTIONS_PER_HOST = 64

SessionT = TypeVar("SessionT", bound=requests.Session)


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


def untrusting(session: SessionT) -> SessionT:
    """``session`` set not to scan the environment on each request, with connection pools of
    :data:`CONNECTIONS_PER_HOST` (see the module doc)."""
    session.trust_env = False
    for prefix in ("https://", "http://"):
        session.mount(prefix, HTTPAdapter(pool_maxsize=CONNECTIONS_PER_HOST))
    return session

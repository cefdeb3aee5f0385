"""One writer at a time on a SQLite file, queued in the kernel.

SQLite lets one transaction write at a time; a writer that finds the lock taken sleeps
in SQLite's busy handler (1 ms, then 2, 5, 10 ...) and polls again, long after the
holder is done. Under several gunicorn workers that sleep, not the work, caps webhook
throughput. Writers of the same file therefore queue on an advisory lock (``flock``)
beside it first: the kernel wakes the next one the moment the lock is released. Where
``flock`` does not exist, threads of one process still queue and SQLite's busy handler
covers the rest.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class WriterQueue:
    """Serializes write transactions on the SQLite database at ``path``."""

    def __init__(self, path: str) -> None:
        self._lock_path = f"{path}-writers"
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this writer's turn and hold it for the ``with`` block."""
        with self._threads:
            fd = self._file()
            if fd is None:
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _file(self) -> int | None:
        # A forked worker must not share its parent's open file: flock belongs to it.
        if fcntl is not None and self._pid != os.getpid():
            self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

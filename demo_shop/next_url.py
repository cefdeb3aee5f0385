"""Where to send the browser after signing in: a path of this site, never another one."""

from __future__ import annotations

from urllib.parse import urlsplit

#: Longest ``next`` value kept (a path and query of the shop's own pages fit easily).
MAX_NEXT_LENGTH = 512


def safe_next_url(target: str | None) -> str | None:
    """``target`` if it is a same-site relative path, else ``None``.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    ``/\\t/evil.example`` or ``/\\\\evil.example`` would leave the site; any control
    character, backslash, scheme or host refuses the value.
    """
    if not target or len(target) > MAX_NEXT_LENGTH or not target.startswith("/"):
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F or char == "\\" for char in target):
        return None
    if target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target

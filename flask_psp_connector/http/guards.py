"""Refuse hostile request input before a route reads it.

Two kinds of input reach no route's logic intact: NUL characters, which PostgreSQL text
cannot hold and which no id, email or path contains, and JSON nested deeper than any
real payload, which exhausts Python's recursion limit inside the JSON parser. Both are
answered 400 in the route's own error shape (the caller raises :class:`BadRequest`).
"""

from __future__ import annotations

import re

from flask import Request
from werkzeug.exceptions import BadRequest

#: Deepest JSON nesting accepted. Stripe events, Commerce Layer documents and the
#: browser modules' bodies stay far below it.
MAX_JSON_DEPTH = 32

_SPECIAL = re.compile(rb'["\\\[\]{}]')
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN, _CLOSE = (ord("["), ord("{")), (ord("]"), ord("}"))


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``data`` nests arrays and objects more than ``limit`` deep.

    One linear pass that skips string contents, so it costs the same on any input
    (a regular expression over strings can backtrack quadratically).
    """
    depth, in_string, skip_at = 0, False, -1
    for match in _SPECIAL.finditer(data):
        position = match.start()
        if position == skip_at:
            continue
        char = data[position]
        if in_string:
            if char == _BACKSLASH:
                skip_at = position + 1
            elif char == _QUOTE:
                in_string = False
        elif char == _QUOTE:
            in_string = True
        elif char in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif char in _CLOSE:
            depth -= 1
    return False


def has_nul(data: bytes) -> bool:
    """Whether ``data`` holds a NUL byte, raw or as a JSON ``\\u0000`` escape."""
    return b"\x00" in data or b"\\u0000" in data


def url_problem(request: Request) -> str | None:
    """What is wrong with the request's path or query string, or ``None``."""
    if "\x00" in request.path:
        return "The path contains a NUL character."
    for key, value in request.args.items(multi=True):
        if "\x00" in key or "\x00" in value:
            return "The query string contains a NUL character."
    return None


#: Bodies that are not JSON whatever their content: their brackets and quotes mean nothing.
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def body_problem(request: Request) -> str | None:
    """What is wrong with the request's body, read as JSON, or ``None``.

    Any body but a form's is checked, whatever its ``Content-Type``: some routes parse
    their body as JSON without asking the client to say so.
    """
    if request.mimetype in _FORM_TYPES:
        return None
    data = request.get_data(cache=True)
    if has_nul(data):
        return "The body contains a NUL character."
    if json_too_deep(data):
        return f"The body nests deeper than {MAX_JSON_DEPTH} levels."
    return None


def reject_hostile_input(request: Request, *, body: bool = True) -> None:
    """Raise :class:`BadRequest` for a NUL character in the URL (or JSON body) or for
    JSON nested too deep."""
    problem = url_problem(request) or (body_problem(request) if body else None)
    if problem is not None:
        raise BadRequest(problem)

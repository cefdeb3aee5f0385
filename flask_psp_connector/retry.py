"""Run an attempt again after a lost race, with jittered exponential backoff."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from flask_psp_connector.errors import ConcurrentModification

T = TypeVar("T")


def retrying(
    attempt: Callable[[], T],
    *,
    retry_on: tuple[type[BaseException], ...],
    attempts: int,
    backoff: float,
) -> T:
    """Return ``attempt()``, running it again on ``retry_on`` up to ``attempts`` times in all.

    ``attempt`` must re-read what it decides on. The pause before try *n* (from 0) is
    ``backoff * 2**n`` seconds, jittered by ±50% so racing writers do not meet again in step.
    The last loss surfaces as :class:`ConcurrentModification`.
    """
    for number in range(attempts):
        try:
            return attempt()
        except retry_on:
            if number == attempts - 1:
                raise ConcurrentModification("The resource was modified concurrently; try again.") from None
            time.sleep(backoff * 2**number * random.uniform(0.5, 1.5))
    raise AssertionError("attempts must be at least 1")

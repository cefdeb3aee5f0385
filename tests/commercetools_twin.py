"""What the commercetools twins of the embedded store's suites share: the fake project
answers on `responses`, and calls to the local Stripe double go through."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import responses


@pytest.fixture(autouse=True)
def double_passes_through(stripe_mock: responses.RequestsMock, stripe_double: str) -> Iterator[None]:
    """Let calls to the Stripe double past the `responses` mock the fake project answers on."""
    stripe_mock.add_passthru(stripe_double)
    yield


def run_here(suite: ModuleType, namespace: dict[str, Any]) -> None:
    """Run every test of ``suite`` in the module whose globals are ``namespace``."""
    namespace.update({name: getattr(suite, name) for name in dir(suite) if name.startswith("test_")})

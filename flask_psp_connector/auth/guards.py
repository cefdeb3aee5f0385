"""Route guards: checkout session, JWT (:mod:`.jwks`) and OAuth2 (:mod:`.introspection`).

Each guard is a decorator a host app can reuse on its own views::

    @app.get("/my-cart")
    @require_session
    def my_cart():
        return {"cartId": g.psp_session.cart_id}

A refused credential raises :class:`~flask_psp_connector.errors.AuthError`, which the
processor renders in the upstream auth body (HTTP 401).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import g, request

from flask_psp_connector.auth.jwks import verify_jwt
from flask_psp_connector.errors import AuthError
from flask_psp_connector.state import ConnectorState, connector_state

F = TypeVar("F", bound=Callable[..., Any])


def _state() -> ConnectorState:
    return connector_state()


def bearer_token() -> str:
    """Return the bearer token of the request or raise :class:`AuthError`."""
    header = request.headers.get("Authorization")
    if not header:
        raise AuthError("This endpoint requires the authorization header.", code="access_denied")
    parts = header.split(" ")
    if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1]:
        raise AuthError("The authorization header must be 'Bearer <token>'.", code="invalid_request")
    return parts[1]


def _session_id() -> str:
    """The request's ``X-Session-Id``, or :class:`AuthError` when it cannot be one."""
    session_id = request.headers.get("X-Session-Id", "")
    if not 0 < len(session_id) <= 256:
        raise AuthError("Session is not active")
    return session_id


def require_session(view: F) -> F:
    """Allow the request only with a valid, unexpired ``X-Session-Id``.

    The session is then available as ``g.psp_session``.
    """

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        session = _state().platform.get_session(_session_id())
        if session is None:
            raise AuthError("Session is not active")
        g.psp_session = session
        return view(*args, **kwargs)

    return cast(F, guarded)


def require_checkout(view: F) -> F:
    """:func:`require_session` for views about the session's cart: the session is read
    together with its cart and the cart's payments.

    The session is then available as ``g.psp_session``, and with its cart and payments
    as ``g.psp_checkout`` (a :class:`~flask_psp_connector.ports.Checkout`).
    """

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        checkout = _state().platform.get_checkout(_session_id())
        if checkout is None:
            raise AuthError("Session is not active")
        g.psp_session, g.psp_checkout = checkout.session, checkout
        return view(*args, **kwargs)

    return cast(F, guarded)


def require_jwt(view: F) -> F:
    """Allow the request only with a Bearer JWT signed by a key of ``CTP_JWKS_URL``.

    The token's claims are then available as ``g.psp_jwt_claims``.
    """

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        state = _state()
        g.psp_jwt_claims = verify_jwt(
            bearer_token(),
            state.jwks,
            issuer=state.settings["CTP_JWT_ISSUER"],
            project_key=state.settings["CTP_PROJECT_KEY"],
        )
        return view(*args, **kwargs)

    return cast(F, guarded)


def authorities_of(scope: str, project_key: str) -> set[str]:
    """The authorities a scope string grants for ``project_key``.

    ``manage_project:my-project`` grants ``manage_project`` only when ``my-project`` is
    this project; a scope without a project suffix grants its name.
    """
    granted = set()
    for item in scope.split():
        name, _, project = item.partition(":")
        if not project or project == project_key:
            granted.add(name)
    return granted


def require_oauth2(*authorities: str) -> Callable[[F], F]:
    """Allow the request only with a Bearer token granting any of ``authorities``.

    The introspection response is then available as ``g.psp_token``.
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            state = _state()
            info = state.introspector.introspect(bearer_token())
            if info.get("active") is not True:
                raise AuthError("Token is not active.")
            scope = info.get("scope")
            if not scope or not isinstance(scope, str):
                raise AuthError("Token has no scopes.")
            if not authorities_of(scope, state.settings["CTP_PROJECT_KEY"]) & set(authorities):
                raise AuthError(
                    "Not authorized", code="insufficient_scope", fields={"validAuthorities": list(authorities)}
                )
            g.psp_token = info
            return view(*args, **kwargs)

        return cast(F, guarded)

    return decorate

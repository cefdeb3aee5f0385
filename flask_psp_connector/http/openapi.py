"""Blueprints that document their routes in the connector's OpenAPI document.

flask-smorest ships no type information, so its decorators would erase the types of every
view they wrap: :class:`ApiBlueprint` declares the ones the connector uses, with types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

import flask_smorest  # type: ignore[import-untyped]

F = TypeVar("F", bound=Callable[..., Any])

#: flask-smorest's Api, which holds the document and registers the blueprints.
Api: TypeAlias = flask_smorest.Api

class _ConnectorApi(flask_smorest.Api):  # type: ignore[misc]
    """flask-smorest's Api without its app-wide JSON error handler.

    The connector renders errors on its own blueprints; the host app's pages keep theirs.
    """

    def _register_error_handlers(self) -> None:
        pass


def connector_api(app: Any, title: str, version: str, error_schema: Any) -> Api:
    """The connector's Api on ``app`` (keys prefixed ``PSP_``), documenting errors with ``error_schema``."""
    api_class = type("ConnectorApi", (_ConnectorApi,), {"ERROR_SCHEMA": error_schema})
    return api_class(app, config_prefix="PSP_",
                     spec_kwargs={"title": title, "version": version, "openapi_version": "3.0.3"})


#: A route's ``security`` requirement in the document.
Security = list[dict[str, list[str]]]


class ApiBlueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's blueprint with typed decorators (same arguments, same behaviour)."""

    def route(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Register the view for ``rule`` and document it (``methods``, ``parameters``...)."""
        decorator: Callable[[F], F] = super().route(rule, **options)
        return decorator

    @staticmethod
    def doc(**kwargs: Any) -> Callable[[F], F]:
        """Add ``kwargs`` (``summary``, ``security``, ``parameters``...) to the operation's document."""
        decorator: Callable[[F], F] = flask_smorest.Blueprint.doc(**kwargs)
        return decorator

    def arguments(self, schema: Any, **kwargs: Any) -> Callable[[F], F]:
        """Parse the request with ``schema`` and pass the result to the view first."""
        decorator: Callable[[F], F] = super().arguments(schema, **kwargs)
        return decorator

    def response(self, status_code: int, schema: Any = None, **kwargs: Any) -> Callable[[F], F]:
        """Serialize the view's answer with ``schema`` and document it as the success response."""
        decorator: Callable[[F], F] = super().response(status_code, schema, **kwargs)
        return decorator

    def alt_response(self, status_code: int | str, **kwargs: Any) -> Callable[[F], F]:
        """Document another response of the operation (nothing is serialized)."""
        decorator: Callable[[F], F] = super().alt_response(status_code, **kwargs)
        return decorator


class _WithoutDefaultError:
    """The Api as seen by one operation's documentation: no automatic ``default`` response."""

    DEFAULT_ERROR_RESPONSE_NAME = None

    def __init__(self, api: Any) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


class OwnErrorsBlueprint(ApiBlueprint):
    """A blueprint whose routes answer errors in a shape of their own (a gateway protocol,
    OAuth2) and document it with ``alt_response("default", ...)``, which then replaces the
    processor's error body that flask-smorest would document for them."""

    @staticmethod
    def _prepare_response_doc(doc: Any, doc_info: Any, *, api: Any, spec: Any, **kwargs: Any) -> Any:
        if "default" in doc_info.get("response", {}).get("responses", {}):
            api = _WithoutDefaultError(api)
        return flask_smorest.Blueprint._prepare_response_doc(doc, doc_info, api=api, spec=spec, **kwargs)

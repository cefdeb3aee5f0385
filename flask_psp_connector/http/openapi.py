"""OpenAPI documentation helpers shared by the connector's blueprints."""

from __future__ import annotations

from typing import Any

import flask_smorest


class _WithoutDefaultError:
    """The Api as seen by one operation's documentation: no automatic ``default`` response."""

    DEFAULT_ERROR_RESPONSE_NAME = None

    def __init__(self, api: Any) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


class OwnErrorsBlueprint(flask_smorest.Blueprint):
    """A blueprint whose routes answer errors in a shape of their own (a gateway protocol,
    OAuth2) and document it with ``alt_response("default", ...)``, which then replaces the
    processor's error body that flask-smorest would document for them."""

    @staticmethod
    def _prepare_response_doc(doc: Any, doc_info: Any, *, api: Any, spec: Any, **kwargs: Any) -> Any:
        if "default" in doc_info.get("response", {}).get("responses", {}):
            api = _WithoutDefaultError(api)
        return flask_smorest.Blueprint._prepare_response_doc(doc, doc_info, api=api, spec=spec, **kwargs)

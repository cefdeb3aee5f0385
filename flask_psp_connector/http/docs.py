"""``/docs``: Swagger UI over the connector's ``/openapi.json``, with nothing from a CDN.

Swagger UI's files come from the flask-swagger-ui package (a maintained copy of
swagger-ui-dist) and are served by the app; the page has no inline script or style, so it
works offline and under a strict Content-Security-Policy (``script-src 'self'``).
"""

from __future__ import annotations

from importlib.resources import files

from flask import Blueprint, Response, render_template, send_from_directory, url_for

#: Swagger UI's files, as the flask-swagger-ui package ships them.
SWAGGER_UI_DIST = str(files("flask_swagger_ui") / "dist")

def docs_blueprint() -> Blueprint:
    """A new blueprint of ``/docs`` and Swagger UI's files."""
    blueprint = Blueprint("psp_docs", __name__, template_folder="templates")
    blueprint.get("/docs")(docs)
    blueprint.get("/docs/assets/<path:filename>")(asset)
    return blueprint


def docs() -> str:
    """The OpenAPI document in Swagger UI."""
    return render_template("psp/docs.html", spec_url=url_for("psp-api-docs.openapi_json"))


def asset(filename: str) -> Response:
    """One of Swagger UI's files (JavaScript, CSS, icons)."""
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=86400)

"""The package as a host app meets it: its public names, its version, its type marker."""

from __future__ import annotations

import configparser
import inspect
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import flask_psp_connector
from flask_psp_connector.version import UNKNOWN, read_version

ROOT = Path(__file__).resolve().parent.parent


def _declared_version() -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    return parser["metadata"]["version"]


def test_the_version_is_the_one_setup_cfg_declares() -> None:
    assert flask_psp_connector.__version__ == _declared_version()
    assert flask_psp_connector.__version__ != UNKNOWN


def test_a_checkout_names_its_own_version_over_an_installed_copy(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = flask-psp-connector\nversion = 9.8.7\n")
    assert read_version(tmp_path) == "9.8.7"


def test_without_a_checkout_the_installed_metadata_answers(tmp_path: Path) -> None:
    try:
        installed = metadata.version("flask-psp-connector")
    except metadata.PackageNotFoundError:
        pytest.skip("flask-psp-connector is not installed in this environment")
    assert read_version(tmp_path) == installed
    # Another project's setup.cfg (or one whose version is computed) is not ours to read.
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = something-else\nversion = 1.2.3\n")
    assert read_version(tmp_path) == installed
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = flask-psp-connector\nversion = attr: x.__version__\n")
    assert read_version(tmp_path) == installed


def test_neither_checkout_nor_installed_copy_reports_an_unknown_version(tmp_path: Path) -> None:
    assert read_version(tmp_path, "no-such-distribution-anywhere") == UNKNOWN


def test_the_openapi_document_carries_the_version() -> None:
    from flask import Flask

    from flask_psp_connector import PSPConnector

    app = Flask(__name__)
    app.config.update(TESTING=True, PSP_DATABASE_URL="sqlite://")
    PSPConnector(app)
    assert app.test_client().get("/openapi.json").get_json()["info"]["version"] == flask_psp_connector.__version__


def test_the_public_api_is_what_all_names() -> None:
    public = {name for name in vars(flask_psp_connector) if not name.startswith("_")}
    submodules = {name for name in public if inspect.ismodule(getattr(flask_psp_connector, name))}
    assert public - submodules == set(flask_psp_connector.__all__) - {"__version__"}
    for name in flask_psp_connector.__all__:
        value = getattr(flask_psp_connector, name)
        if name != "__version__":
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_importing_the_package_alone_works_in_a_fresh_interpreter() -> None:
    """Whichever module a program imports first, the package and its extension load (no
    module reads a name from a half-initialised one)."""
    for first in ("flask_psp_connector", "flask_psp_connector.extension", "flask_psp_connector.version",
                  "flask_psp_connector.processor.health", "flask_psp_connector.stripe.adapter", "demo_shop.cart"):
        result = subprocess.run([sys.executable, "-c", f"import {first}; import flask_psp_connector as p; print(p.__version__)"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (first, result.stderr)
        assert result.stdout.strip() == _declared_version()


def test_the_package_is_marked_typed() -> None:
    assert (ROOT / "flask_psp_connector" / "py.typed").is_file()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    assert "py.typed" in parser["options.package_data"]["flask_psp_connector"]

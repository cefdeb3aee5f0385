"""The package's version, read from its distribution metadata.

The metadata is the installed distribution's; a source checkout may run next to an older
installed copy (the package is installed as a wheel and imported from the checkout), so
when the checkout's ``setup.cfg`` is beside the package its version wins.
"""

from __future__ import annotations

import configparser
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "flask-psp-connector"
#: What an uninstalled copy outside a checkout reports (PEP 440's local-version form).
UNKNOWN = "0+unknown"


def read_version(checkout: Path | None = None, distribution: str = DISTRIBUTION) -> str:
    """The version of ``distribution``: the ``[metadata] version`` of ``checkout``'s
    ``setup.cfg`` when there is one, else the installed metadata, else :data:`UNKNOWN`.

    :param checkout: the directory holding the package's source tree (default: the
        directory above this package).
    """
    setup_cfg = (checkout or Path(__file__).resolve().parent.parent) / "setup.cfg"
    if setup_cfg.is_file():
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(setup_cfg, encoding="utf-8")
        if parser.get("metadata", "name", fallback="") == distribution:
            declared = parser.get("metadata", "version", fallback="").strip()
            if declared and not declared.startswith(("attr:", "file:")):
                return declared
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return UNKNOWN


__version__ = read_version()

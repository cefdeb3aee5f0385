"""flask-psp-connector: Stripe payments for commerce platforms, as a Flask extension.

The public API: the extension, the guards a host app puts on its own routes, the
embedded store and the drafts it takes, and the errors callers may catch.
"""

from flask_psp_connector.auth.guards import require_jwt, require_oauth2, require_session
from flask_psp_connector.domain.model import Address
from flask_psp_connector.errors import ConfigurationError, PSPError
from flask_psp_connector.extension import PSPConnector
from flask_psp_connector.platforms.embedded.store import LineItemDraft, LocalPlatform
from flask_psp_connector.version import __version__

__all__ = [
    "Address",
    "ConfigurationError",
    "LineItemDraft",
    "LocalPlatform",
    "PSPConnector",
    "PSPError",
    "__version__",
    "require_jwt",
    "require_oauth2",
    "require_session",
]

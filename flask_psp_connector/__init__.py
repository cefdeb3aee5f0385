"""flask-psp-connector: Stripe payments for commerce platforms, as a Flask extension."""

__version__ = "0.1.0"

from flask_psp_connector.auth.guards import require_jwt, require_oauth2, require_session  # noqa: E402
from flask_psp_connector.domain.model import Address  # noqa: E402
from flask_psp_connector.errors import ConfigurationError, PSPError  # noqa: E402
from flask_psp_connector.extension import PSPConnector  # noqa: E402
from flask_psp_connector.platforms.embedded.store import LineItemDraft, LocalPlatform  # noqa: E402

__all__ = [
    "Address",
    "ConfigurationError",
    "LineItemDraft",
    "LocalPlatform",
    "PSPConnector",
    "PSPError",
    "require_jwt",
    "require_oauth2",
    "require_session",
]

"""flask-psp-connector: Stripe payments for commerce platforms, as a Flask extension."""

__version__ = "0.1.0"

from .auth import require_jwt, require_oauth2, require_session  # noqa: E402
from .errors import ConfigurationError, PSPError  # noqa: E402
from .extension import PSPConnector  # noqa: E402
from .model import Address  # noqa: E402
from .platforms.local import LineItemDraft, LocalPlatform  # noqa: E402

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

"""Every configuration key the connector reads, with its default and meaning.

A key is read from ``app.config`` first, then from the environment, so Heroku config
vars map 1:1. The upstream connector's names are kept (``STRIPE_*``, ``CTP_*``, ...);
the extension's own keys start with ``PSP_``. Values are parsed and validated once, in
:func:`load_settings`, so a bad value stops the app at start-up with the key's name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flask_psp_connector import setting_parsers as parsers
from flask_psp_connector.domain.behavior import parse_behavior_rules, parse_element_options
from flask_psp_connector.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Setting:
    """One configuration key: its name, default, parser and documentation line."""

    key: str
    default: Any
    doc: str
    parse: parsers.Parser = parsers.plain_text

    @property
    def mode(self) -> str:
        """Where the key matters (the configuration reference's "Mode" column)."""
        if self.key in _MODE_OF:
            return _MODE_OF[self.key]
        return next((mode for prefix, mode in _MODE_PREFIXES if self.key.startswith(prefix)), "all")


_MODE_OF = {
    "STRIPE_SECRET_KEY": "all (required to serve; optional in tests and commands)",
    "CTP_PROJECT_KEY": "all",
    "CTP_JWKS_URL": "all (operations routes)",
    "CTP_JWT_ISSUER": "all (operations routes)",
    "CTP_CLIENT_ID": "commercetools; embedded with CTP_AUTH_URL",
    "CTP_CLIENT_SECRET": "commercetools; embedded with CTP_AUTH_URL",
    "CTP_AUTH_URL": "commercetools; embedded (token introspection)",
    "PSP_DATABASE_URL": "embedded store, external gateways",
    "STRIPE_API_BASE": "sandbox and tests",
    "PSP_SANDBOX": "sandbox",
    "PSP_PUBLIC_URL": "deployment (post-deploy)",
    "STRIPE_WEBHOOK_ID": "deployment (post-deploy)",
}
_MODE_PREFIXES = (("CTP_", "commercetools"), ("COMMERCELAYER_", "Commerce Layer gateway"),
                  ("HANTERA_", "Hantera gateway"), ("PSP_METRICS", "operations (metrics)"), ("PSP_LOG", "operations (logs)"))


#: Every key, in the order of the configuration reference (see :func:`reference`).
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "STRIPE_SECRET_KEY", "",
        'Stripe secret key (sk_... or a restricted rk_...). Required to serve requests; tests and `flask psp` commands '
        'may go without.',
    ),
    Setting("STRIPE_PUBLISHABLE_KEY", "", "Stripe publishable key (pk_...) handed to the browser."),
    Setting(
        "STRIPE_WEBHOOK_SIGNING_SECRET", "",
        'Webhook signing secrets (whsec_...), comma-separated during a rotation.',
        parsers.csv,
    ),
    Setting("STRIPE_WEBHOOK_ID", "", "Id of the Stripe webhook endpoint that `flask psp post-deploy` maintains."),
    Setting(
        "STRIPE_CAPTURE_METHOD", "automatic",
        'automatic, automatic_async or manual.',
        parsers.choice("automatic", "automatic_async", "manual"),
    ),
    Setting(
        "STRIPE_APPEARANCE_PAYMENT_ELEMENT", "",
        'Stripe Appearance API object (JSON) for the Payment Element, passed through unchanged.',
        parsers.json_object,
    ),
    Setting(
        "STRIPE_APPEARANCE_EXPRESS_CHECKOUT", "",
        'Appearance object (JSON) for the Express Checkout Element.',
        parsers.json_object,
    ),
    Setting(
        "STRIPE_EXPRESS_ELEMENT_OPTIONS", "",
        'Express Checkout Element options (JSON object); only buttonHeight, buttonTheme, buttonType, emailRequired, '
        'layout, paymentMethodOrder and phoneNumberRequired are kept.',
        parsers.express_options,
    ),
    Setting(
        "STRIPE_LAYOUT", parsers.LAYOUT_DEFAULT,
        'Payment Element layout (JSON); type is tabs, accordion or auto.',
        parsers.layout,
    ),
    Setting(
        "STRIPE_COLLECT_BILLING_ADDRESS", "auto",
        'auto, never or if_required.',
        parsers.choice("auto", "never", "if_required"),
    ),
    Setting("STRIPE_APPLE_PAY_WELL_KNOWN", "", "Contents of Apple Pay's domain association file, served at /applePayConfig."),
    Setting(
        "STRIPE_SAVED_PAYMENT_METHODS_CONFIG", "",
        'Stripe CustomerSession payment_element features (JSON object), e.g. {"payment_method_save":"enabled"}.',
        parsers.saved_methods_config,
    ),
    Setting(
        "STRIPE_PAYMENT_INTENT_SETUP_FUTURE_USAGE", None,
        'off_session, on_session or none: setup_future_usage of new PaymentIntents for known customers; unset falls '
        'back to payment_method_save_usage of STRIPE_SAVED_PAYMENT_METHODS_CONFIG.',
        parsers.setup_future_usage,
    ),
    Setting(
        "STRIPE_PAYMENT_FLOW", "deferred",
        'deferred (the PaymentIntent is created when the shopper pays) or pi_first (created before the Payment Element '
        'is mounted, which then uses its client secret; setup_future_usage is omitted).',
        parsers.choice("deferred", "pi_first"),
    ),
    Setting(
        "STRIPE_PAYMENT_BEHAVIOR_RULES", "",
        'Per-cart overrides (JSON object): keys are a cart country, billing country, shipping country or store key '
        '(looked up in that order), values objects with flowType, captureMethod, setupFutureUsage (off_session, '
        'on_session, none) and collectBillingAddress, e.g. '
        '{"MX":{"captureMethod":"manual"},"store-ca":{"flowType":"pi_first"}}.',
        parse_behavior_rules,
    ),
    Setting(
        "STRIPE_BEHAVIOR_PAYMENT_ELEMENT", "",
        'Payment Element options (JSON object): terms, wallets, defaultValues, fields, business, paymentMethodOrder, '
        'readOnly, layout; other keys and invalid values are dropped.',
        parse_element_options,
    ),
    Setting(
        "STRIPE_ENABLE_MULTI_OPERATIONS", False,
        'Multicapture: manual-capture PaymentIntents request_multicapture if_available, partial captures keep the rest '
        'capturable (final_capture=false), and each capture is recorded by its balance transaction.',
        parsers.boolean,
    ),
    Setting(
        "STRIPE_PAYMENT_METHOD_TYPES", "",
        'Explicit payment method types (comma-separated) instead of automatic payment methods.',
        parsers.csv,
    ),
    Setting(
        "PSP_SANDBOX", False,
        'Sandbox mode (flask_psp_connector.sandbox.sandbox_config sets it): serves the Stripe.js stand-in and the '
        'sandbox Stripe API it calls, forwarding to STRIPE_API_BASE, the local Stripe double.',
        parsers.boolean,
    ),
    Setting(
        "STRIPE_API_BASE", "",
        'Base URL of the Stripe API, with or without /v1; point it at the local Stripe double (python -m '
        'flask_psp_connector.testing) for offline work.',
        parsers.api_base,
    ),
    Setting(
        "MERCHANT_RETURN_URL", "",
        'Absolute URL the browser returns to after redirect-based payments.',
        parsers.absolute_url,
    ),
    Setting(
        "ALLOWED_ORIGINS", "",
        "Origins (comma-separated) allowed to call the processor from a browser; 'self' is the app's own origin; empty "
        'allows any.',
        parsers.csv,
    ),
    Setting("MOCK_ENVIRONMENT", "TEST", "Environment name reported to the browser enabler."),
    Setting(
        "PAYMENT_INTERFACE", "checkout-stripe",
        'paymentMethodInfo.paymentInterface of the payments we create, and the paymentInterface of the saved payment '
        'methods (commercetools Payment Methods) that are ours.',
    ),
    Setting("HEALTH_CHECK_TIMEOUT", 5000, "Milliseconds /operations/status waits for its checks.", parsers.positive_int),
    Setting("CTP_PROJECT_KEY", "payment-integration", "Project key; checked in JWTs and written to PaymentIntent metadata."),
    Setting("CTP_CLIENT_ID", "", "API client id (OAuth2 token introspection against CTP_AUTH_URL)."),
    Setting("CTP_CLIENT_SECRET", "", "API client secret."),
    Setting(
        "CTP_AUTH_URL", "",
        'Authorization server; when set, bearer tokens are introspected at {CTP_AUTH_URL}/oauth/introspect.',
        parsers.absolute_url,
    ),
    Setting(
        "CTP_JWKS_URL", "https://mc-api.europe-west1.gcp.commercetools.com/.well-known/jwks.json",
        'JWKS used to verify JWTs on /operations/status and /payment-components.',
        parsers.absolute_url,
    ),
    Setting("CTP_JWT_ISSUER", "https://mc-api.europe-west1.gcp.commercetools.com", "Issuer JWTs must carry."),
    Setting(
        "PSP_PLATFORM", "",
        'Commerce platform: embedded or commercetools; empty selects commercetools when CTP_CLIENT_ID and CTP_API_URL '
        'are set, else embedded.',
        parsers.choice("", "embedded", "commercetools"),
    ),
    Setting(
        "CTP_API_URL", "",
        'commercetools HTTP API, e.g. https://api.europe-west1.gcp.commercetools.com.',
        parsers.absolute_url,
    ),
    Setting(
        "CTP_SESSION_URL", "",
        'commercetools session service, e.g. https://session.europe-west1.gcp.commercetools.com.',
        parsers.absolute_url,
    ),
    Setting(
        "CTP_SCOPE", "",
        'Scopes (space-separated) the API client asks for with commercetools; empty asks for all of its scopes.',
    ),
    Setting(
        "PSP_PUBLIC_URL", "",
        'Public base URL of this app; `flask psp post-deploy` points the Stripe webhook at it.',
        parsers.absolute_url,
    ),
    Setting("PSP_URL_PREFIX", "", "Prefix of every connector route ('' keeps upstream's paths).", parsers.url_prefix),
    Setting(
        "PSP_DATABASE_URL", "",
        'SQLAlchemy URL of the embedded store; falls back to DATABASE_URL, then SQLite in the instance folder.',
    ),
    Setting("PSP_DATABASE_POOL_SIZE", 10, "Database connections a process keeps for reuse (10 more while needed at once); "
            "give it the threads a process serves with (gunicorn.conf.py sets it to GUNICORN_THREADS).", parsers.positive_int),
    Setting(
        "PSP_DATABASE_LOCK_TIMEOUT", 5000,
        "Milliseconds a statement waits for a row or table lock (PostgreSQL lock_timeout; SQLite's busy timeout) before"
        ' the request fails with 503.',
        parsers.positive_int,
    ),
    Setting("PSP_DATABASE_STATEMENT_TIMEOUT", 30000,
            'Milliseconds one PostgreSQL statement may run (statement_timeout; 0 disables).', parsers.non_negative_int),
    Setting(
        "PSP_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", 60000,
        'Milliseconds a PostgreSQL transaction may sit idle before the server ends it and frees its locks (0 disables).',
        parsers.non_negative_int,
    ),
    Setting(
        "PSP_MAX_BODY_BYTES", 262144,
        "Largest request body the connector's routes accept (Stripe events included).",
        parsers.positive_int,
    ),
    Setting("PSP_SESSION_TTL", 3600, "Seconds a checkout session opened with open_session stays valid.", parsers.positive_int),
    Setting(
        "PSP_TOKEN_TTL", 3600,
        'Seconds an access token from the embedded /oauth/token endpoint stays valid.',
        parsers.positive_int,
    ),
    Setting("PSP_STRIPE_TIMEOUT", 30, "Seconds before a Stripe API call times out.", parsers.positive_int),
    Setting(
        "PSP_STRIPE_MAX_NETWORK_RETRIES", 2,
        'Network retries of a Stripe call (idempotency keys make them safe).',
        parsers.non_negative_int,
    ),
    Setting(
        "PSP_STALE_PAYMENTS", "refund",
        'What becomes of a payment that succeeds for a cart state the cart no longer has (changed while paying, or paid'
        ' twice): refund (refund the charge, or release an uncaptured authorization) or flag (keep it for the merchant '
        'to decide). Either way no order is placed with it.',
        parsers.choice("refund", "flag"),
    ),
    Setting(
        "PSP_LOG_FORMAT", "text",
        'text or json (one object per line) for flask_psp_connector.observability.logs.configure_logging, which the '
        'demo shop calls; the library itself never configures logging.',
        parsers.choice("text", "json"),
    ),
    Setting(
        "PSP_METRICS_PATH", "",
        'Path of the Prometheus metrics (e.g. /metrics; needs the metrics extra); empty serves none.',
        parsers.metrics_path,
    ),
    Setting(
        "PSP_METRICS_TOKEN", "",
        'Bearer token Prometheus must send to read PSP_METRICS_PATH; empty leaves the metrics open.',
    ),
    Setting(
        "PSP_GATEWAY_URL_PREFIX", "/gateways",
        'Prefix of the external-gateway routes (e.g. {prefix}/commercelayer/authorize).',
        parsers.url_prefix,
    ),
    Setting(
        "COMMERCELAYER_SHARED_SECRET", "",
        "Shared secret of the Commerce Layer external gateway; setting it registers the gateway's routes.",
    ),
    Setting(
        "COMMERCELAYER_CALLBACK_URL", "",
        "The gateway's webhook_endpoint_url in Commerce Layer, where settled asynchronous actions are posted; required "
        'with the shared secret.',
        parsers.absolute_url,
    ),
    Setting(
        "COMMERCELAYER_CAPTURE_METHOD", "manual",
        'manual (authorize, capture later) or automatic (charge at authorization) for Commerce Layer payments.',
        parsers.choice("manual", "automatic"),
    ),
    Setting(
        "HANTERA_API_URL", "",
        'Base URL of the Hantera instance (e.g. https://core.example.hantera.cloud); setting it registers the Hantera '
        'PSP routes.',
        parsers.absolute_url,
    ),
    Setting(
        "HANTERA_CLIENT_ID", "",
        'Hantera IAM client (client credentials) that creates payments and completes carts; required with '
        'HANTERA_API_URL.',
    ),
    Setting("HANTERA_CLIENT_SECRET", "", "Secret of that Hantera client; required with HANTERA_API_URL."),
    Setting("HANTERA_SCOPE", "actors/payment:* actors/ticket:* graph:*", "Scopes asked for with the Hantera client's token."),
    Setting(
        "HANTERA_JOB_SECRET", "",
        "Bearer token Hantera's capture job sends to {prefix}/hantera/jobs/capture; required with HANTERA_API_URL.",
    ),
    Setting("HANTERA_PAYMENT_NUMBER_PREFIX", "P_STRIPE_", "Prefix of the payment numbers Hantera generates for Stripe payments."),
    Setting(
        "HANTERA_CAPTURE_METHOD", "manual",
        'manual (captured by the OnPaymentCapture job) or automatic (charged at checkout) for Hantera payments.',
        parsers.choice("manual", "automatic"),
    ),
)

_BY_KEY = {setting.key: setting for setting in SETTINGS}


class Settings(Mapping[str, Any]):
    """The parsed values of every key in :data:`SETTINGS`, read-only."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<Settings {len(self)} keys>"


def reference() -> str:
    """The configuration reference as a Markdown table, generated from :data:`SETTINGS`
    (``flask psp settings`` prints it; the README includes it)."""

    def shown(default: Any) -> str:
        if default is None or default == "":
            return "unset"
        return f"`{default}`"

    rows = [f"| `{s.key}` | {shown(s.default)} | {s.mode} | {s.doc.replace('|', '/')} |" for s in SETTINGS]
    return "\n".join(["| Key | Default | Mode | Meaning |", "|---|---|---|---|", *rows])


def raw_value(config: Mapping[str, Any], key: str, environ: Mapping[str, str] | None = None) -> Any:
    """Return the unparsed value of ``key``: app config, else environment, else default."""
    environ = os.environ if environ is None else environ
    if config.get(key) is not None:
        return config[key]
    if key in environ:
        return environ[key]
    return _BY_KEY[key].default


def load_settings(
    config: Mapping[str, Any], *, testing: bool = False, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, parse and validate every key.

    :param config: the Flask app's config.
    :param testing: when true, a missing Stripe secret key is allowed.
    :raises ConfigurationError: naming the first key whose value is invalid.
    """
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        try:
            values[setting.key] = setting.parse(raw_value(config, setting.key, environ))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(setting.key, str(exc)) from None
    if not values["STRIPE_SECRET_KEY"] and not testing:
        raise ConfigurationError("STRIPE_SECRET_KEY", "is required (set it, or TESTING=True)")
    if values["STRIPE_SECRET_KEY"] and not values["STRIPE_SECRET_KEY"].startswith(("sk_", "rk_")):
        raise ConfigurationError("STRIPE_SECRET_KEY", "must be a Stripe secret key (sk_... or rk_...)")
    if raw_value(config, "STRIPE_PAYMENT_INTENT_SETUP_FUTURE_USAGE", environ) is None:
        saved = json.loads(values["STRIPE_SAVED_PAYMENT_METHODS_CONFIG"] or "{}")
        values["STRIPE_PAYMENT_INTENT_SETUP_FUTURE_USAGE"] = saved.get("payment_method_save_usage")
    if not values["PSP_PLATFORM"]:
        automatic = values["CTP_CLIENT_ID"] and values["CTP_API_URL"]
        values["PSP_PLATFORM"] = "commercetools" if automatic else "embedded"
    if values["PSP_PLATFORM"] == "commercetools":
        for key in ("CTP_API_URL", "CTP_AUTH_URL", "CTP_SESSION_URL", "CTP_CLIENT_ID", "CTP_CLIENT_SECRET"):
            if not values[key]:
                raise ConfigurationError(key, "is required with the commercetools platform")
    if values["COMMERCELAYER_SHARED_SECRET"] and not values["COMMERCELAYER_CALLBACK_URL"]:
        raise ConfigurationError("COMMERCELAYER_CALLBACK_URL", "is required with COMMERCELAYER_SHARED_SECRET")
    if values["HANTERA_API_URL"]:
        for key in ("HANTERA_CLIENT_ID", "HANTERA_CLIENT_SECRET", "HANTERA_JOB_SECRET"):
            if not values[key]:
                raise ConfigurationError(key, "is required with HANTERA_API_URL")
    return Settings(values)


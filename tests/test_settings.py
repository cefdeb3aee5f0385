"""Configuration: one place, app.config before the environment, bad values fail at start-up."""

from dataclasses import FrozenInstanceError, replace

import pytest
from flask import Flask

from flask_psp_connector import ConfigurationError, PSPConnector
from flask_psp_connector.domain.behavior import Behavior, resolve_behavior
from flask_psp_connector.domain.model import Cart, CartState
from flask_psp_connector.options import connector_options
from flask_psp_connector.settings import SETTINGS, load_settings


def load(**config: object) -> dict:
    return dict(load_settings({"STRIPE_SECRET_KEY": "sk_test_x", **config}, environ={}))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("STRIPE_CAPTURE_METHOD", "later"),
        ("STRIPE_APPEARANCE_PAYMENT_ELEMENT", "{theme: night}"),
        ("STRIPE_APPEARANCE_PAYMENT_ELEMENT", "[1, 2]"),
        ("STRIPE_APPEARANCE_EXPRESS_CHECKOUT", "{"),
        ("STRIPE_EXPRESS_ELEMENT_OPTIONS", "not json"),
        ("STRIPE_LAYOUT", '{"type": "carousel"}'),
        ("STRIPE_COLLECT_BILLING_ADDRESS", "always"),
        ("STRIPE_PAYMENT_INTENT_SETUP_FUTURE_USAGE", "sometimes"),
        ("STRIPE_ENABLE_MULTI_OPERATIONS", "maybe"),
        ("STRIPE_API_BASE", "localhost:8420"),
        ("MERCHANT_RETURN_URL", "/relative/return"),
        ("HEALTH_CHECK_TIMEOUT", "0"),
        ("PSP_URL_PREFIX", "psp"),
        ("PSP_MAX_BODY_BYTES", "lots"),
    ],
)
def test_invalid_value_names_its_key(key: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        load(**{key: value})
    assert excinfo.value.key == key
    assert str(excinfo.value).startswith(f"{key}:")


def test_secret_key_is_required_outside_testing() -> None:
    with pytest.raises(ConfigurationError, match="STRIPE_SECRET_KEY"):
        load_settings({}, environ={})
    assert load_settings({}, testing=True, environ={})["STRIPE_SECRET_KEY"] == ""


def test_publishable_key_is_not_accepted_as_secret_key_and_is_not_echoed() -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        load_settings({"STRIPE_SECRET_KEY": "pk_live_oops"}, environ={})
    assert "pk_live_oops" not in str(excinfo.value)


def test_app_config_wins_over_environment_which_wins_over_default() -> None:
    environ = {"STRIPE_CAPTURE_METHOD": "manual", "STRIPE_LAYOUT": '{"type":"accordion"}'}
    settings = load_settings({"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_CAPTURE_METHOD": "automatic_async"}, environ=environ)
    assert settings["STRIPE_CAPTURE_METHOD"] == "automatic_async"
    assert settings["STRIPE_LAYOUT"] == '{"type":"accordion"}'
    assert settings["STRIPE_COLLECT_BILLING_ADDRESS"] == "auto"


def test_appearance_is_kept_verbatim() -> None:
    raw = '{"theme":"night",  "variables": {"colorPrimary": "#0570de"}}'
    assert load(STRIPE_APPEARANCE_PAYMENT_ELEMENT=raw)["STRIPE_APPEARANCE_PAYMENT_ELEMENT"] == raw


def test_lists_and_flags_are_parsed() -> None:
    settings = load(
        STRIPE_WEBHOOK_SIGNING_SECRET="whsec_a, whsec_b",
        ALLOWED_ORIGINS="https://a.test,https://b.test",
        STRIPE_ENABLE_MULTI_OPERATIONS="true",
        STRIPE_PAYMENT_METHOD_TYPES="card, sepa_debit",
    )
    assert settings["STRIPE_WEBHOOK_SIGNING_SECRET"] == ("whsec_a", "whsec_b")
    assert settings["ALLOWED_ORIGINS"] == ("https://a.test", "https://b.test")
    assert settings["STRIPE_ENABLE_MULTI_OPERATIONS"] is True
    assert settings["STRIPE_PAYMENT_METHOD_TYPES"] == ("card", "sepa_debit")


def test_every_setting_is_documented() -> None:
    assert all(setting.doc for setting in SETTINGS)
    assert len({setting.key for setting in SETTINGS}) == len(SETTINGS)


def test_invalid_config_stops_init_app(tmp_path) -> None:
    app = Flask("bad", instance_path=str(tmp_path))
    app.config.update(STRIPE_SECRET_KEY="sk_test_x", STRIPE_CAPTURE_METHOD="eventually")
    with pytest.raises(ConfigurationError, match="STRIPE_CAPTURE_METHOD"):
        PSPConnector(app)
    assert "psp_connector" not in app.extensions


def test_registering_twice_is_refused(tmp_path) -> None:
    app = Flask("twice", instance_path=str(tmp_path))
    app.config.update(STRIPE_SECRET_KEY="sk_test_x")
    connector = PSPConnector(app)
    with pytest.raises(RuntimeError, match="already registered"):
        connector.init_app(app)


def test_init_app_pattern_and_state_in_extensions(tmp_path) -> None:
    connector = PSPConnector()
    app = Flask("factory", instance_path=str(tmp_path))
    app.config.update(STRIPE_SECRET_KEY="sk_test_x")
    connector.init_app(app)
    state = app.extensions["psp_connector"]
    assert not hasattr(connector, "app")
    with app.app_context():
        assert connector.platform is state.platform
    assert (tmp_path / "psp.sqlite3").exists()  # SQLite store created in the instance folder


def test_url_prefix_moves_every_route(make_app) -> None:
    app = make_app(PSP_URL_PREFIX="/psp")
    rules = {rule.rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith(("processor.", "oauth."))}
    assert rules and all(rule.startswith("/psp/") for rule in rules)
    assert app.test_client().get("/psp/openapi.json").status_code == 200


def test_the_readme_holds_the_generated_configuration_reference() -> None:
    from pathlib import Path

    from flask_psp_connector.settings import reference

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("<!-- settings reference: generated, do not edit -->\n", 1)[1]
    block = block.split("\n<!-- end of settings reference -->", 1)[0]
    assert block == reference(), "README is out of date: run scripts/update-settings-reference"
    assert block.count("\n| `") == len(SETTINGS)


@pytest.mark.parametrize("given", ["http://127.0.0.1:8420", "http://127.0.0.1:8420/", "http://127.0.0.1:8420/v1",
                                   "http://127.0.0.1:8420/v1/"])
def test_the_stripe_api_base_may_name_v1_or_not(given) -> None:
    assert load_settings({"STRIPE_API_BASE": given}, testing=True)["STRIPE_API_BASE"] == "http://127.0.0.1:8420"


def test_the_use_cases_options_are_the_settings_parsed_once() -> None:
    settings = load_settings({
        "STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_CAPTURE_METHOD": "manual", "STRIPE_PAYMENT_FLOW": "pi_first",
        "STRIPE_SAVED_PAYMENT_METHODS_CONFIG": '{"payment_method_save":"enabled","payment_method_save_usage":"off_session"}',
        "STRIPE_PAYMENT_BEHAVIOR_RULES": '{"MX":{"captureMethod":"automatic"}}', "HEALTH_CHECK_TIMEOUT": "2500",
        "STRIPE_ENABLE_MULTI_OPERATIONS": "true", "PSP_STALE_PAYMENTS": "flag", "CTP_PROJECT_KEY": "shop",
    }, environ={})
    options = connector_options(settings)
    assert options.behavior == Behavior("pi_first", "manual", "off_session", "auto")
    assert options.behavior_rules == {"MX": {"captureMethod": "automatic"}}
    assert options.saved_methods_features == {"payment_method_save": "enabled", "payment_method_save_usage": "off_session"}
    assert options.health_check_timeout == 2.5
    assert (options.multicapture, options.stale_policy, options.project_key) == (True, "flag", "shop")
    with pytest.raises(FrozenInstanceError):
        options.stale_policy = "refund"  # type: ignore[misc]


def test_a_rule_overrides_the_options_behaviour_for_its_carts_only() -> None:
    defaults = Behavior("deferred", "automatic", "off_session", "auto")
    rules = {"MX": {"captureMethod": "manual", "flowType": "pi_first"}}
    mexican = Cart("c1", 1, "MXN", (), 0, 0, CartState.ACTIVE, country="MX")
    assert resolve_behavior(defaults, rules, mexican) == Behavior("pi_first", "manual", None, "auto")
    assert resolve_behavior(defaults, rules, replace(mexican, country="DE")) == defaults

"""The HTTP clients read proxies and CA bundles from the environment once per origin."""

from __future__ import annotations

from flask_psp_connector.auth.oauth_client import ClientCredentialsHTTP
from flask_psp_connector.http.outbound import EnvironmentSettings
from flask_psp_connector.stripe.adapter import StripeGateway


def test_proxies_and_ca_bundle_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example.test")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    settings = EnvironmentSettings()
    assert settings("https://api.example.test/v1/x?y=1") == {
        "proxies": {"https": "http://proxy.example.test:3128", "no": "internal.example.test"},
        "verify": "/etc/ssl/bundle.pem"}
    assert settings("https://internal.example.test/a")["proxies"] == {}  # NO_PROXY
    monkeypatch.delenv("HTTPS_PROXY")
    assert settings("https://api.example.test/other")["proxies"]["https"] == "http://proxy.example.test:3128"  # kept


def test_without_proxies_requests_verify_with_their_defaults(monkeypatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                 "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    assert EnvironmentSettings()("https://api.example.test/") == {"proxies": {}, "verify": True}


def test_clients_do_not_scan_the_environment_per_request() -> None:
    client = ClientCredentialsHTTP(token_url="https://auth.example.test/oauth/token", client_id="c", client_secret="s")
    assert client._oauth.trust_env is False
    gateway = StripeGateway("sk_test_x", api_base="http://127.0.0.1:9")
    assert gateway._client._requestor._client._session.trust_env is False

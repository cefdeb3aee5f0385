"""External payment gateways: commerce platforms that call out to a payment gateway use
the connector as that gateway, backed by Stripe.

* :mod:`.commercelayer` — the Commerce Layer external payment gateway (blueprint).
* :mod:`.commercelayer_actions` — its use cases (authorize, capture, void, refund,
  customer token, settlement of asynchronous actions).
* :mod:`.store` — answers kept per request and the outbox of callbacks.
* :mod:`.callbacks` — delivery of that outbox, with backoff.
* :mod:`.hantera` — the Hantera PSP flow (blueprint): checkout ingress, confirm, capture job.
* :mod:`.hantera_actions` — its use cases; :mod:`.hantera_client` — Hantera's HTTP API.
"""

"""External payment gateways: commerce platforms that call out to a payment gateway use
the connector as that gateway, backed by Stripe.

* :mod:`.commercelayer` — the Commerce Layer external payment gateway: its routes
  (signed requests), payload reading, use cases (authorize, capture, void, refund,
  customer token, settlement of asynchronous actions) and signature.
* :mod:`.hantera` — the Hantera PSP flow: its routes (checkout ingress, confirm, capture
  job), use cases and Hantera's HTTP API client.
* :mod:`.store` — answers kept per request and the outbox of callbacks;
  :mod:`.delivery` — delivery of that outbox, with backoff; :mod:`.commands` — the
  ``flask psp gateways`` commands.
"""

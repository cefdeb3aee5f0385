"""Commerce Layer's external payment gateway protocol, backed by Stripe: routes, schemas, payloads,
signature and use cases.
"""

"""Stripe, behind :class:`~flask_psp_connector.ports.StripePort`: the only room that imports the
Stripe SDK.
"""

"""Stripe's webhooks: the signed route, the event dispatch table and its plans, the signals a
change sends, and reconciliation.
"""

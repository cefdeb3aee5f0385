"""Hantera's PSP flow, backed by Stripe: routes, the Hantera API client and its port, and the use
cases.
"""

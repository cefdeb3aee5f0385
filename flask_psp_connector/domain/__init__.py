"""The domain: money, carts, payments and their transactions, settlement, the inbox's records and
the Stripe vocabulary. No I/O, no Flask, no Stripe SDK.
"""

"""The processor API of Stripe's connector for commercetools: its routes and schemas, and the
checkout, settlement and operations use cases behind them.
"""

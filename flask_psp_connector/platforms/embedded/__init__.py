"""The embedded store (SQLite or PostgreSQL): the :class:`~.database.Database`, its migrations, and
carts, payments, orders, customers and the event inbox.
"""

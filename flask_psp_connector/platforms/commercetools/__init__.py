"""commercetools as the commerce platform: its HTTP client, the port's implementation, the JSON
mapping, the event inbox in custom objects and the custom types.
"""

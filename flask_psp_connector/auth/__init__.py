"""Who may call: route guards, JWKS, token introspection, the embedded token server and its route,
and the OAuth client the connector calls out with.
"""

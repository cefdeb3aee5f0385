"""What every HTTP surface shares: error bodies, CORS, hostile-input guards, OpenAPI blueprints,
Money on the wire, outbound sessions, ``/docs``.
"""

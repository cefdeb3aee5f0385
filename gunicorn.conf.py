"""gunicorn settings of the Procfile's web process, read from the environment (Heroku-style).

``PORT`` (set by the platform), ``WEB_CONCURRENCY`` (worker processes, default 2) and
``GUNICORN_THREADS`` (threads per worker, default 4).
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# The platform's router terminates TLS; trust its X-Forwarded-Proto so external URLs say https.
forwarded_allow_ips = "*"
control_socket_disable = True
accesslog = "-"

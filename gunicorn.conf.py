"""gunicorn settings of the Procfile's web process, read from the environment (Heroku-style).

``PORT`` (set by the platform), ``WEB_CONCURRENCY`` (worker processes, default 2) and
``GUNICORN_THREADS`` (threads per worker, default 4).
"""

import os
import tempfile

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# The platform's router terminates TLS; trust its X-Forwarded-Proto so external URLs say https.
forwarded_allow_ips = "*"
control_socket_disable = True
accesslog = "-"

# Every worker writes its metrics to files in one folder, so that a scrape of any worker
# adds up all of them (prometheus-client's multiprocess mode); a new folder per start.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="psp-metrics-"))


def child_exit(server, worker):  # noqa: ANN001 (gunicorn's hook signature)
    """Forget the live gauges of a worker that exited (counters are kept)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

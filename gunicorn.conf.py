"""gunicorn settings of the Procfile's web process, read from the environment (Heroku-style).

``PORT`` (set by the platform), ``WEB_CONCURRENCY`` (worker processes, default 2),
``GUNICORN_THREADS`` (threads per worker, default 16) and ``FORWARDED_ALLOW_IPS`` (the
proxies whose ``X-Forwarded-Proto`` is believed; default only the loopback, gunicorn's
own default). On Heroku the Python buildpack sets ``FORWARDED_ALLOW_IPS=*``: a dyno is
reachable only through the platform's router, which sets that header on every request.
Elsewhere, list your proxy's addresses, or a client could claim https.
"""

import os
import tempfile

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# A checkout holds its thread while it waits on Stripe (100-400 ms per call), not the CPU.
# With 32 shoppers at once and 250 ms per Stripe call, 16 threads serve about 3x the
# checkouts/s of 4 (SQLite and PostgreSQL) for ~2 MB more per worker. 24 or 32 threads
# gave -3 % to +36 % over 16 in five runs on two shared cores (the CPU is the limit there)
# and take more database connections (bench/concurrency.py, README "Performance").
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
worker_class = "gthread"
# One kept database connection per thread, so that no thread waits for one or opens one
# for a single transaction (none is held across a Stripe call).
os.environ.setdefault("PSP_DATABASE_POOL_SIZE", str(threads))
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
control_socket_disable = True
accesslog = "-"
# Request lines and referrers can carry Stripe client secrets: the logger masks them.
logger_class = "demo_shop.gunicorn_logger.RedactingLogger"

# Every worker writes its metrics to files in one folder, so that a scrape of any worker
# adds up all of them (prometheus-client's multiprocess mode); a new folder per start.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="psp-metrics-"))


def child_exit(server, worker):  # noqa: ANN001 (gunicorn's hook signature)
    """Forget the live gauges of a worker that exited (counters are kept)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

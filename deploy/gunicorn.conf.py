"""gunicorn settings for `gunicorn -c deploy/gunicorn.conf.py "gateway:create_app()"`."""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A listening socket per worker: the kernel spreads new connections over the workers. With one
# shared socket the first worker to wake takes them all, and a proxy's keep-alive connections
# then pin the load on that worker (measured: one worker at 94% CPU, the other at 12%).
reuse_port = True
timeout = 30
graceful_timeout = 20
# Workers are recycled now and then so a slow leak never grows without bound.
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
# No query strings in access logs: they can carry authorization codes.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """The app is loaded in this worker: its long-lived objects leave the collector's walks."""
    from gateway.web_server import freeze_loaded_objects

    freeze_loaded_objects()


def child_exit(server, worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """Fold a gone worker's metric files into the totals (PROMETHEUS_MULTIPROC_DIR set)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

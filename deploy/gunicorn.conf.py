"""gunicorn settings for `gunicorn -c deploy/gunicorn.conf.py "gateway:create_app()"`."""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 20
# Workers are recycled now and then so a slow leak never grows without bound.
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
# No query strings in access logs: they can carry authorization codes.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

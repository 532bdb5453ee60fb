"""The Redis connection and the RQ queue bound to an app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis
from flask import Flask, current_app
from rq import Queue
from rq.job import Job

from gateway import embedded_redis


def resolve_redis_url(config: dict) -> str:
    """``REDIS_URL`` when set, else the data directory's embedded server.

    The embedded server is started only when ``START_EMBEDDED_REDIS`` is true (the default);
    one-shot commands that need no queue leave it off and get the socket's URL only.
    """
    if config.get("REDIS_URL"):
        return config["REDIS_URL"]
    data_dir = Path(config["GATEWAY_DATA_DIR"])
    if not config.get("START_EMBEDDED_REDIS", True):
        return embedded_redis.socket_url(data_dir)
    return embedded_redis.start(data_dir).url


class GatewayQueue(Queue):
    """RQ's queue, stamping each job with the request id of whoever queued it."""

    def create_job(self, *args: Any, **kwargs: Any) -> Job:
        from gateway.observability.logs import request_id_var

        request_id = request_id_var.get()
        if request_id:
            kwargs["meta"] = {"request_id": request_id, **(kwargs.get("meta") or {})}
        return super().create_job(*args, **kwargs)


def init_app(app: Flask) -> None:
    """Attach a Redis client and the gateway's RQ queue to ``app``."""
    url = resolve_redis_url(app.config)
    app.config["REDIS_URL"] = url
    # RQ stores pickled payloads; decode_responses must stay off for it.
    connection = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    app.extensions["redis"] = connection
    app.extensions["queue"] = GatewayQueue(app.config["QUEUE_NAME"], connection=connection)


def get_redis() -> redis.Redis:
    """The current app's Redis client."""
    return current_app.extensions["redis"]


def get_queue() -> Queue:
    """The current app's RQ queue."""
    return current_app.extensions["queue"]

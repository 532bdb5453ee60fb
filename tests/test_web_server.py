"""Serving with gunicorn: the loaded app's objects are frozen out of the collector's walks."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path

import pytest

from gateway import web_server

DEPLOY_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"


@pytest.fixture
def frozen_count():
    """The number of frozen objects; whatever a test froze is collectable again after it."""
    gc.unfreeze()
    yield gc.get_freeze_count
    gc.unfreeze()


def test_gateway_web_freezes_the_loaded_app_before_gunicorn_forks(app, monkeypatch, frozen_count):
    seen: dict[str, object] = {}

    def run(served, options):
        seen["frozen"] = frozen_count()
        seen["app"] = served

    monkeypatch.setattr(web_server, "run_gunicorn", run)
    web_server.serve(app, "127.0.0.1", 0)
    assert seen["app"] is app
    assert seen["frozen"] > 0


def test_the_deploy_config_freezes_each_workers_loaded_app(frozen_count):
    hooks = runpy.run_path(str(DEPLOY_CONFIG))
    assert frozen_count() == 0
    hooks["post_worker_init"](None)
    assert frozen_count() > 0

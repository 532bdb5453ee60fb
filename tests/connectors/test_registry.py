"""Discovery of connectors through the `gateway.connectors` entry-point group."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint

import pytest

from connectors import registry
from connectors.interface import AccountLinking, Connector, WebhookRegistration
from connectors.komunitin import KomunitinConnector
from connectors.registry import (
    GROUP,
    NotRegistered,
    PluginLoadError,
    available_connectors,
    get_connector_class,
    load_errors,
)
from connectors.timerepublik import TimeRepublikConnector


class NotAConnector:
    key = "odd"


class WrongKey(TimeRepublikConnector):
    key = "something-else"


def _points(*pairs: tuple[str, str]) -> list[EntryPoint]:
    return [EntryPoint(name=name, value=value, group=GROUP) for name, value in pairs]


def test_installed_connectors_are_found():
    found = available_connectors()
    assert found["timerepublik"] is TimeRepublikConnector
    assert found["komunitin"] is KomunitinConnector
    assert get_connector_class("timerepublik") is TimeRepublikConnector


@pytest.mark.parametrize("cls", [TimeRepublikConnector, KomunitinConnector])
def test_connectors_implement_the_whole_interface(cls):
    # Like zope's verifyClass: no abstract operation is left unimplemented.
    assert issubclass(cls, Connector)
    assert cls.__abstractmethods__ == frozenset()


def test_timerepublik_offers_linking_and_webhooks():
    assert issubclass(TimeRepublikConnector, AccountLinking)
    assert issubclass(TimeRepublikConnector, WebhookRegistration)
    assert not issubclass(KomunitinConnector, AccountLinking)


def test_unknown_key_is_not_registered():
    with pytest.raises(NotRegistered) as caught:
        get_connector_class("timeoverflow")
    assert caught.value.key == "timeoverflow"
    assert "timeoverflow" in str(caught.value)


def test_a_plugin_that_fails_to_import_is_named(monkeypatch, caplog):
    points = _points(
        ("broken", "tests.connectors.no_such_module:Connector"),
        ("timerepublik", "connectors.timerepublik:TimeRepublikConnector"),
    )
    monkeypatch.setattr(registry, "_entry_points", lambda: points)
    with pytest.raises(PluginLoadError) as caught:
        get_connector_class("broken")
    assert caught.value.name == "broken"
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    assert "no_such_module" in str(caught.value)

    with caplog.at_level(logging.ERROR, logger="connectors.registry"):
        found = available_connectors()
    assert list(found) == ["timerepublik"]
    assert "'broken' failed to load" in caplog.text
    assert "broken" in load_errors()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("tests.connectors.test_registry:NotAConnector", "not a Connector subclass"),
        ("tests.connectors.test_registry:WrongKey", "not its name"),
        ("tests.connectors.test_registry:Missing", "AttributeError"),
    ],
)
def test_a_plugin_that_is_not_a_connector_is_refused(monkeypatch, value, reason):
    monkeypatch.setattr(registry, "_entry_points", lambda: _points(("odd", value)))
    with pytest.raises(PluginLoadError) as caught:
        get_connector_class("odd")
    assert reason in str(caught.value)


def test_a_key_registered_twice_is_refused(monkeypatch):
    points = _points(
        ("timerepublik", "connectors.timerepublik:TimeRepublikConnector"),
        ("timerepublik", "connectors.komunitin:KomunitinConnector"),
    )
    monkeypatch.setattr(registry, "_entry_points", lambda: points)
    with pytest.raises(PluginLoadError, match="registered twice"):
        get_connector_class("timerepublik")
    assert "timerepublik" in load_errors()

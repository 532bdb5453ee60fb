"""Finding connectors: the ``gateway.connectors`` entry-point group, keyed by name.

Any installed distribution can add a platform by declaring, in its ``pyproject.toml``::

    [project.entry-points."gateway.connectors"]
    mytimebank = "mypackage.connector:MyTimebankConnector"

A plugin that fails to import is never dropped silently: it is logged with its name and error,
listed by ``load_errors()``, and asking for it raises ``PluginLoadError`` chained to the cause.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points

from connectors.interface import Connector

__all__ = [
    "GROUP",
    "NotRegistered",
    "PluginLoadError",
    "available_connectors",
    "get_connector_class",
    "load_errors",
]

GROUP = "gateway.connectors"

log = logging.getLogger(__name__)


class NotRegistered(LookupError):
    """No connector is registered under ``key``."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no connector is registered as {key!r} in {GROUP!r}")
        self.key = key


class PluginLoadError(ImportError):
    """A registered connector could not be loaded; ``name`` is its key, ``error`` the cause."""

    def __init__(self, name: str, error: BaseException) -> None:
        super().__init__(f"connector {name!r} failed to load: {type(error).__name__}: {error}")
        self.name = name
        self.error = error


def _entry_points() -> list[EntryPoint]:
    return list(entry_points(group=GROUP))


def _load(point: EntryPoint) -> type[Connector]:
    try:
        loaded = point.load()
    except Exception as exc:  # any import-time failure is the plugin's to report
        raise PluginLoadError(point.name, exc) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
        raise PluginLoadError(point.name, TypeError(f"{point.value} is not a Connector subclass"))
    if getattr(loaded, "key", None) != point.name:
        raise PluginLoadError(
            point.name,
            ValueError(f"{point.value}.key is {getattr(loaded, 'key', None)!r}, not its name"),
        )
    return loaded


def _scan() -> tuple[dict[str, type[Connector]], dict[str, PluginLoadError]]:
    loaded: dict[str, type[Connector]] = {}
    failed: dict[str, PluginLoadError] = {}
    seen: dict[str, str] = {}
    for point in _entry_points():
        if point.name in seen:
            if seen[point.name] != point.value:
                failed[point.name] = PluginLoadError(
                    point.name,
                    ValueError(f"registered twice: {seen[point.name]} and {point.value}"),
                )
                loaded.pop(point.name, None)
            continue
        seen[point.name] = point.value
        try:
            loaded[point.name] = _load(point)
        except PluginLoadError as exc:
            failed[point.name] = exc
    return loaded, failed


def available_connectors() -> dict[str, type[Connector]]:
    """Every connector that loads, by key; each one that does not is logged as an error."""
    loaded, failed = _scan()
    for error in failed.values():
        log.error("%s", error)
    return loaded


def load_errors() -> dict[str, str]:
    """The registered connectors that failed to load, with their errors."""
    return {name: str(error) for name, error in _scan()[1].items()}


def get_connector_class(key: str) -> type[Connector]:
    """The connector class registered as ``key``.

    Raises ``NotRegistered`` if no plugin has that name and ``PluginLoadError`` if it failed.
    """
    points = {point.value: point for point in _entry_points() if point.name == key}
    if not points:
        raise NotRegistered(key)
    if len(points) > 1:
        raise PluginLoadError(key, ValueError(f"registered twice: {', '.join(sorted(points))}"))
    return _load(next(iter(points.values())))

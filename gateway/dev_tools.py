"""The development tools, seen from the gateway: present or not, never imported.

The sandbox timebank and the demo site are a distribution of their own (``devtools/`` in the
repository, community-gateway-devtools) so that the wheel and the image carry no fake partner
with no real security. It adds its commands to ``gateway`` through the ``gateway.commands``
entry points; the gateway looks them up by name and loads one only when it is run.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

COMMANDS_GROUP = "gateway.commands"
SANDBOX = "sandbox"
DEMO_SITE = "demo-site"
DEV_TOOLS = {SANDBOX: "the sandbox timebank", DEMO_SITE: "the demo site"}
INSTALL_HINT = (
    "To add the development tools, in a clone of the repository: `make run` (which installs "
    "them) or `pip install -e ./devtools`."
)


def added_commands() -> dict[str, EntryPoint]:
    """The commands installed distributions add to ``gateway``, by name (first one wins)."""
    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=COMMANDS_GROUP):
        found.setdefault(entry_point.name, entry_point)
    return found


def installed_dev_tools() -> set[str]:
    """Which of the development tools' commands this environment has."""
    return DEV_TOOLS.keys() & added_commands().keys()


def not_installed(name: str) -> str:
    """One line saying that the development tool ``name`` is missing, and how to add it."""
    return (
        f"`gateway {name}` is {DEV_TOOLS[name]}, a development tool, not installed here. "
        f"{INSTALL_HINT}"
    )

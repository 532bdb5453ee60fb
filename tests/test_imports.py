"""Every module imports on its own, with no import cycle, and production code imports no
development tool.

Each module is imported first in a fresh process (a fork of one that loaded only third-party
libraries), so a module that works only because another one happened to be imported first,
or that takes part in an import cycle, fails here by name. The development tools (``devtools/``:
the sandbox timebank and the demo site) may import the gateway; the gateway, its connectors and
schemas never import them, so that they run where the tools are not installed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = ("gateway", "connectors", "schemas")
DEV_TOOLS = ("gateway_sandbox", "gateway_demo_site")
PACKAGES = PRODUCTION + DEV_TOOLS
# Where each package's folder is: the development tools are a distribution of their own.
HOME = {**{name: ROOT for name in PRODUCTION}, **{name: ROOT / "devtools" for name in DEV_TOOLS}}


def _modules(packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((HOME[package] / package).rglob("*.py")):
            relative = path.relative_to(HOME[package]).with_suffix("")
            if "migrations" in relative.parts or relative.name == "__main__":
                continue  # run by Alembic, or by `python -m`, not imported
            name = ".".join(relative.parts).removesuffix(".__init__")
            found[name] = path
    return found


def _imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


IMPORT_EACH = textwrap.dedent(
    """
    import importlib, os, sys, traceback
    preload, modules = sys.argv[1].split(), sys.argv[2].split()
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception:
            pass  # an optional library; the module that needs it says so below
    failed = 0
    for name in modules:
        pid = os.fork()
        if pid == 0:
            try:
                importlib.import_module(name)
            except BaseException:
                traceback.print_exc()
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            failed += 1
            print("FAILED", name, flush=True)
    sys.exit(1 if failed else 0)
    """
)


def test_every_module_imports_on_its_own():
    modules = _modules()
    third_party = {
        name.split(".")[0]
        for path in modules.values()
        for name in _imported_names(path)
        if name.split(".")[0] not in PACKAGES
    }
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, " ".join(sorted(third_party)), " ".join(modules)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]


def test_production_code_names_no_development_tool():
    # Every import statement, at any depth (a function's lazy import included).
    offending = [
        f"{name} imports {imported}"
        for name, path in _modules(PRODUCTION).items()
        for imported in _imported_names(path)
        if imported.split(".")[0] in DEV_TOOLS
    ]
    assert offending == []


IMPORT_PRODUCTION = textwrap.dedent(
    """
    import importlib, sys
    for name in sys.argv[1].split():
        importlib.import_module(name)
    print(" ".join(sorted(n for n in sys.modules if n.split(".")[0] in sys.argv[2].split())))
    """
)


def test_importing_every_production_module_loads_no_development_tool():
    # A fresh interpreter where the tools are installed (`make test` installs them): loading
    # all of the gateway, the `gateway` command included, loads none of them.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORT_PRODUCTION,
            " ".join(_modules(PRODUCTION)),
            " ".join(DEV_TOOLS),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert result.stdout.strip() == ""

"""The sandbox timebank: a real HTTP server of ours that serves the partner contract.

``create_sandbox_app(config)`` builds it; ``SandboxServer`` runs it in a thread (tests); the
``gateway sandbox`` command (``cli``) runs it in the foreground. See ``faults`` for the
fault-injection knobs.
"""

from gateway_sandbox.app import create_sandbox_app
from gateway_sandbox.server import SandboxServer

__all__ = ["SandboxServer", "create_sandbox_app"]

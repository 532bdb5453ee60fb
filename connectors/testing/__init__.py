"""Test tools for connector packages: contract checks and the conformance suite.

They need the development extras (``responses``, ``openapi-core``, ``pytest``); the gateway
itself never imports them.
"""

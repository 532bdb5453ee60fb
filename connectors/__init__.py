"""Connectors: one package per external platform, behind one interface.

``connectors.interface`` holds the data classes and the ``Connector`` ABC, ``connectors.errors``
the typed errors, ``connectors.http`` the shared HTTP client and its failure table, and
``connectors.registry`` discovery through the ``gateway.connectors`` entry-point group.
"""

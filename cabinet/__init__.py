"""Composition root: wires configuration, database, SFU, signaling and web into one process.

This package is the only place that knows every layer; it owns the ``cabinet`` command.
"""

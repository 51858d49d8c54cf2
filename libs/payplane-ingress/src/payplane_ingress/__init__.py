"""Envoy configuration for the payplane ingress, generated (never hand-kept per environment).

``model`` says what the ingress must do; ``render`` turns it into Envoy v3 resources; ``files``
writes them for Envoy's file-based dynamic config (atomic rename into a watched directory) and
validates them with ``envoy --mode validate``. The local CLI and the operator both use it.
"""

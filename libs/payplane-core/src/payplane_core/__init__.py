"""Shared library of the payplane services.

A library, not a service: it has no entry points. Every service builds its FastAPI app with
``create_service_app`` and gets request ids, JSON logs, RFC 9457 problems, health, readiness,
metrics and the internal-signature check the same way.
"""

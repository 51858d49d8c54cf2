"""kopf handlers, one module per resource; importing this package registers them all."""

from payplane_operator.handlers import merchants, plans, providers, startup

__all__ = ["merchants", "plans", "providers", "startup"]

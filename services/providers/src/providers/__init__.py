"""providers service: provider registry, routing, per-provider circuit breakers, failover."""

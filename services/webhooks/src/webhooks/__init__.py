"""webhooks service: verifies provider webhooks on the raw bytes, keeps an audit log of every
one received, and hands verified outcomes to the payments service."""

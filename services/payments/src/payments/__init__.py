"""payments service: payment lifecycle, idempotency, timeline and transactional outbox."""

from prometheus_client import Counter, Histogram

DECISIONS = Counter(
    "payplane_gateway_decisions_total",
    "Authorization decisions, by outcome and reason",
    ["decision", "reason"],
)
DECISION_SECONDS = Histogram(
    "payplane_gateway_decision_seconds",
    "Time to decide, from request received to answer",
    ["decision"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
CACHE_REJECTED = Counter(
    "payplane_gateway_key_cache_rejected_total",
    "Key cache entries that did not authenticate (tampered, or sealed with a retired key)",
)

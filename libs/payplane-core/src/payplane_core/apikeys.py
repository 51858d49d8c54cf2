"""What the merchants service and the gateway agree on about merchant API keys.

Keys are stored and looked up only by their SHA-256 hash. The gateway caches a resolved key in
Redis under ``key_cache_key(hash)``; the merchants service deletes that entry when the key is
revoked or rotated, so revocation takes effect at once (and at the latest after the cache TTL).
"""

import hashlib
import hmac

API_KEY_PREFIX = "pk_"  # read and write
READ_KEY_PREFIX = "rk_"  # read only
KEY_PREFIXES = (API_KEY_PREFIX, READ_KEY_PREFIX)

_CACHE_PREFIX = "gw:key:"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def hashes_match(stored_hash: str, key: str) -> bool:
    """Constant-time comparison of a stored hash with a presented key's hash."""
    return hmac.compare_digest(stored_hash.encode(), hash_key(key).encode())


def key_cache_key(key_hash: str) -> str:
    return f"{_CACHE_PREFIX}{key_hash}"

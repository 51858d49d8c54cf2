"""Random key material. Formats are part of the contract (prefixes) or of a library's."""

import base64
import os
import secrets

from payplane_core.apikeys import API_KEY_PREFIX, READ_KEY_PREFIX

VISIBLE_PREFIX_CHARS = 8  # after "pk_"/"rk_": enough to tell keys apart, useless to an attacker


def new_key(kind: str) -> str:
    prefix = API_KEY_PREFIX if kind == "api" else READ_KEY_PREFIX
    return prefix + secrets.token_urlsafe(32)  # 256 bits


def visible_prefix(key: str) -> str:
    return key[: len(API_KEY_PREFIX) + VISIBLE_PREFIX_CHARS]


def new_signing_secret() -> str:
    """The RFC 9421 HMAC key; clients use its UTF-8 bytes exactly as issued."""
    return "sig_" + secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    """Standard Webhooks format: ``whsec_`` + base64 of the raw key (what its libraries decode)."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()

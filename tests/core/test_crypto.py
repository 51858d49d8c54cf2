import pytest
from payplane_core.crypto import SecretBox, SecretBoxError


def test_round_trip_and_context_binding():
    box = SecretBox(["k1"])
    token = box.encrypt("whsec_abc", context="merchant:1")
    assert "whsec_abc" not in token
    assert box.decrypt(token, context="merchant:1") == "whsec_abc"
    with pytest.raises(SecretBoxError):
        box.decrypt(token, context="merchant:2")  # copied to another row: refused


def test_tampering_and_unknown_keys_are_refused():
    box = SecretBox(["k1"])
    token = box.encrypt("secret", context="c")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (flipped, "garbage", "v1.deadbeef.AAAA"):
        with pytest.raises(SecretBoxError):
            box.decrypt(bad, context="c")
    with pytest.raises(SecretBoxError):
        SecretBox(["k2"]).decrypt(token, context="c")


def test_rotation_first_key_encrypts_all_decrypt():
    old = SecretBox(["k1"]).encrypt("s", context="c")
    rotating = SecretBox(["k2", "k1"])
    assert rotating.needs_rotation(old)
    new = rotating.reencrypt(old, context="c")
    assert not rotating.needs_rotation(new)
    assert SecretBox(["k2"]).decrypt(new, context="c") == "s"

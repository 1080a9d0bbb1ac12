"""Templates at rest: AES-GCM with key ids; nothing opens without the right key and owner."""

import pytest

from hwotp.config import ConfigError
from hwotp.sealing import Sealer, SealError, new_key_entry


def test_round_trip_and_rotation():
    old, new = new_key_entry("k1"), new_key_entry("k2")
    before = Sealer.from_settings(old, "k1")
    blob = before.seal(b"templates", b"tpl:alice")
    assert b"templates" not in blob and before.key_id_of(blob) == "k1"
    after = Sealer.from_settings(f"{old},{new}", "k2")
    assert after.open(blob, b"tpl:alice") == b"templates"  # old blobs still open
    assert after.key_id_of(after.seal(b"x", b"c")) == "k2"  # new ones use the new key
    with pytest.raises(SealError, match="not configured"):
        Sealer.from_settings(new, "k2").open(blob, b"tpl:alice")


def test_wrong_key_owner_or_tampering_do_not_open():
    entry = new_key_entry("k1")
    sealer = Sealer.from_settings(entry, "k1")
    blob = sealer.seal(b"templates", b"tpl:alice")
    with pytest.raises(SealError):
        Sealer.from_settings(new_key_entry("k1"), "k1").open(blob, b"tpl:alice")  # same id, other key
    with pytest.raises(SealError):
        sealer.open(blob, b"tpl:mallory")  # copied to another user
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(SealError):
        sealer.open(bytes(tampered), b"tpl:alice")


@pytest.mark.parametrize("spec,current", [("", ""), ("k1", ""), ("k1:c2hvcnQ=", ""), (new_key_entry("k1"), "k9")])
def test_bad_key_settings_are_refused(spec, current):
    with pytest.raises(ConfigError):
        Sealer.from_settings(spec, current)

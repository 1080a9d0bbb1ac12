"""Caller keys: only hashes are kept, every registered hash is compared, bad settings stop the start."""

import pytest

from gateway.auth import ApiKeys
from hwotp.client import key_hash
from hwotp.config import ConfigError


def test_registered_keys_name_their_caller():
    keys = ApiKeys(f"bank:{key_hash('k-bank')}, shop:{key_hash('k-shop')}")
    assert keys.caller("k-bank") == "bank"
    assert keys.caller("k-shop") == "shop"
    for wrong in (None, "", "k-bank ", key_hash("k-bank"), "K-BANK"):
        assert keys.caller(wrong) is None


@pytest.mark.parametrize("spec", ["", " , ", "bank", "bank:abc", f":{key_hash('x')}", "bank:" + "zz" * 32])
def test_malformed_key_settings_are_refused(spec):
    with pytest.raises(ConfigError, match="HWOTP_API_KEYS"):
        ApiKeys(spec)

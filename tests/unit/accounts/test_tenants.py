"""Tenants and their keys."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services.accounts import ids, tenants
from services.accounts.errors import Conflict, Invalid

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("name, ok", [("acme", True), ("acme-desk.2", True), ("a", True), ("Acme", False),
                                      ("-acme", False), ("", False), ("a" * 101, False), ("ac me", False),
                                      (None, False)])
def test_names(name, ok):
    if ok:
        assert tenants.check_name(name) == name
    else:
        with pytest.raises(Invalid) as err:
            tenants.check_name(name)
        assert err.value.field == "name"


def test_the_key_is_shown_once_and_stored_hashed(store):
    made = tenants.create(store, "acme", T0)
    assert made.api_key.startswith("tlp_") and len(made.api_key) > 40
    assert made.tenant.key_hash == ids.digest(made.api_key) != made.api_key
    assert tenants.by_key(store, made.api_key).id == made.tenant.id
    assert tenants.by_name(store, "acme").id == made.tenant.id
    for wrong in ("", made.api_key[:-1], made.tenant.key_hash, "tlp_" + made.tenant.key_hash):
        assert tenants.by_key(store, wrong) is None


def test_rotating_a_key_retires_the_old_one(store):
    made = tenants.create(store, "acme", T0)
    new = tenants.rotate_key(store, made.tenant.id)
    assert tenants.by_key(store, made.api_key) is None
    assert tenants.by_key(store, new).id == made.tenant.id


def test_a_name_is_taken_once(store):
    tenants.create(store, "acme", T0)
    with pytest.raises(Conflict):
        tenants.create(store, "acme", T0)

"""Tenants: created by the operator (admin token or `tulpar apply`), each
with one API key that is shown once and stored hashed."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import select

from services.accounts import ids
from services.accounts.errors import Conflict, Invalid, NotFound
from services.store import Store
from services.store.models import Tenant

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class NewTenant:
    tenant: Tenant
    api_key: str  # shown once: only its hash is stored


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise Invalid("a tenant name is 1-100 characters: lowercase letters, digits, '.', '_' or '-', "
                      "starting with a letter or digit", field="name")
    return name


def create(store: Store, name: str, now: datetime) -> NewTenant:
    name = check_name(name)
    key = ids.new_api_key()
    tenant = Tenant(id=ids.new_id("tn"), name=name, key_hash=ids.digest(key), created_at=now)
    try:
        with store.sessions.begin() as s:
            s.add(tenant)
    except sa.exc.IntegrityError:
        raise Conflict(f"a tenant named {name!r} exists already", field="name") from None
    return NewTenant(tenant, key)


def rotate_key(store: Store, tenant_id: str) -> str:
    """A new key for the tenant; the old one stops working at once."""
    key = ids.new_api_key()
    with store.sessions.begin() as s:
        tenant = s.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("no such tenant")
        tenant.key_hash = ids.digest(key)
    return key


def by_key(store: Store, api_key: str) -> Tenant | None:
    if not api_key.startswith(ids.KEY_PREFIX):
        return None
    with store.sessions() as s:
        return s.scalar(select(Tenant).where(Tenant.key_hash == ids.digest(api_key)))


def by_name(store: Store, name: str) -> Tenant | None:
    with store.sessions() as s:
        return s.scalar(select(Tenant).where(Tenant.name == name))

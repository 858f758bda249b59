"""Tenants and what they own: API keys, channels, subscriptions, their deliveries.

The domain functions the API (services/api/), the web app and `tulpar apply`
call; each takes the store, the acting tenant's id and `now`, and each query
names the tenant, so one tenant's request never reaches another's rows
(an id that is not the tenant's is NotFound, exactly like a missing one).

    ids.py            ids, API keys, webhook secrets, confirmation tokens
    errors.py         NotFound, Invalid (with the field), Conflict
    tenants.py        create a tenant (its key shown once), find one by key
    channels.py       email (confirmed by a link) and webhook channels
    subscriptions.py  news and FX subscriptions; every change is logged for the workers
    deliveries.py     a tenant's deliveries, replay
    live.py           the workers' side: the subscriptions to match, kept up to date
"""

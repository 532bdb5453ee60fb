"""Events pushed to the website: webhook subscriptions, signed as Standard Webhooks.

Why subscriptions are platforms. The sync engine (``gateway.sync``) already gives every
outbound effect what events need: rows written in the change's own transaction, a drain per
target with its concurrency limit, retries with backoff, dead letters, ``sync_attempts``, a
circuit breaker, operators' retry/skip and the admin outbox pages. All of it is keyed by
``outbox.platform_id``. So each subscription is backed by an internal ``Platform`` row whose
connector is the built-in ``webhooks`` one (``WEBHOOKS_CONNECTOR``), and its events are
outbox rows of kind ``event``: the engine runs unchanged, and only the handler of that kind
(``gateway.webhooks.delivery``) is new. The other design, a nullable target column beside
``platform_id``, would have touched every query of the claims, the drain, the breaker, the
slots and the admin views.

The price is that timebank paths must skip these platforms: ``is_timebank()`` filters the
members' timebank pages, the reconciliation schedule and command, ``/callbacks/<name>``, the
consent offer at login and ``gateway platforms`` (``get_platform`` finds timebanks only). No
entry point registers the ``webhooks`` connector, so building a connector for such a platform
fails loudly instead of reaching a timebank API.

Order per member: each event row depends on the newest undelivered event row of the same
subscription and member (``outbox.depends_on_id``), so backoff and concurrency cannot reorder a
member's events; events of different members flow in parallel.
"""

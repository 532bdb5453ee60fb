"""Webhook receivers get a retry budget of hours; partners keep theirs."""

from __future__ import annotations

from gateway.sync.policy import current_policy, policy_for


def test_webhooks_are_retried_for_hours(make_app):
    app = make_app(WEBHOOK_MAX_ATTEMPTS=20, WEBHOOK_BACKOFF_CAP_SECONDS=3600.0)
    with app.app_context():
        partners = policy_for("timerepublik")
        webhooks = policy_for("webhooks")
        assert partners == current_policy()
    assert (webhooks.max_attempts, webhooks.cap_seconds) == (20, 3600.0)
    assert webhooks.base_seconds == partners.base_seconds
    # With full jitter each wait averages half its ceiling: about five hours in all.
    ceilings = [min(webhooks.cap_seconds, webhooks.base_seconds * 2**n) for n in range(19)]
    assert sum(ceilings) / 2 > 4 * 3600

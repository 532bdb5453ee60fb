"""Where events may be sent: never to link-local or cloud metadata addresses, whichever way the
address is written, nor to addresses no single receiver answers at; the website's own private
network and names are fine."""

from __future__ import annotations

import pytest

from gateway.webhooks.subscriptions import WebhookError, check_url
from tests.factories import bearer_headers

REFUSED = [
    "https://169.254.169.254/latest/meta-data/",
    "https://[fe80::1]/hooks",
    "https://[::ffff:169.254.169.254]/hooks",
    "https://[fd00:ec2::254]/latest",
    "https://2852039166/hooks",  # 169.254.169.254 as one number
    "https://0xa9fea9fe/hooks",  # the same in hexadecimal
    "https://169.254.43518/hooks",  # the same with a 16-bit tail
    "https://0.0.0.0/hooks",
    "https://224.0.0.1/hooks",
    "https://240.0.0.1/hooks",
]
ACCEPTED = [
    "https://www.example.org/hooks/gateway",
    "https://10.0.0.5/hooks",  # the website beside the gateway on a private network
    "https://[2001:db8::5]/hooks",
    "https://1234.example/hooks",
    "http://127.0.0.1:8000/hooks",  # outside production only
]


@pytest.mark.parametrize("url", REFUSED)
def test_metadata_and_meaningless_addresses_are_refused(app, url):
    with app.app_context(), pytest.raises(WebhookError, match="never calls it") as refused:
        check_url(url)
    assert refused.value.field == "url"


@pytest.mark.parametrize("url", ACCEPTED)
def test_names_and_the_websites_own_addresses_are_accepted(app, url):
    with app.app_context():
        assert check_url(url) == url


def test_the_admin_api_says_which_field_and_why(app, client):
    with app.app_context():
        headers = bearer_headers("admin")
    refused = client.post(
        "/admin/api/webhooks",
        json={"url": "https://169.254.169.254/latest", "events": ["member.created"]},
        headers=headers,
    )
    assert refused.status_code == 422
    assert refused.mimetype == "application/problem+json"
    assert "metadata" in refused.get_data(as_text=True)

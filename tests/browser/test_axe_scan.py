"""The accessibility scan itself: it finds what it should, so a clean scan means something."""

from __future__ import annotations

import pytest


def test_the_scan_fails_a_page_with_a_serious_violation(chromium, assert_accessible):
    page = chromium.new_page()
    # An image without a text alternative, and a form field without a label.
    page.set_content('<html lang="en"><main><img src="x.png"><input type="text"></main></html>')
    with pytest.raises(AssertionError, match="image-alt"):
        assert_accessible(page, "a broken page")


def test_the_scan_passes_a_plain_labelled_page(chromium, assert_accessible):
    page = chromium.new_page()
    page.set_content(
        '<html lang="en"><head><title>Fine</title></head><body><main><h1>Fine</h1>'
        '<label for="q">Name</label><input id="q" type="text"></main></body></html>'
    )
    assert_accessible(page, "a plain page")


def test_the_scan_runs_under_the_gateways_content_security_policy(
    app, unused_port, chromium, axe_source
):
    from tests.live import LiveServer

    with LiveServer(app, unused_port) as gateway:
        page = chromium.new_page()
        response = page.goto(f"{gateway.url}/login")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.evaluate(axe_source)
        result = page.evaluate("() => axe.run(document).then(r => r.passes.length)")
        assert result > 0

"""The webhook connection read into settings: the client secret is required, the extras are optional."""

from __future__ import annotations

import pytest

from crm_sync.events.webhook_settings import DEFAULT_MAX_BODY_BYTES, WebhookSettings


def test_a_password_alone_is_enough() -> None:
    assert WebhookSettings.from_connection("s3cret", {}) == WebhookSettings(
        "s3cret", None, None, DEFAULT_MAX_BODY_BYTES
    )


def test_extras_as_the_ui_or_a_uri_gives_them() -> None:
    # A connection URI's query gives every extra as a string.
    extras = {"target_url": "https://airflow.example.org/crm-sync-events/hubspot", "portal_id": "62515"}
    settings = WebhookSettings.from_connection("s3cret", {**extras, "max_body_bytes": "65536"})
    assert (settings.target_url, settings.portal_id, settings.max_body_bytes) == (extras["target_url"], 62515, 65536)


@pytest.mark.parametrize("password", [None, ""])
def test_without_the_client_secret_nothing_can_be_verified(password: str | None) -> None:
    with pytest.raises(ValueError, match="client secret"):
        WebhookSettings.from_connection(password, {"target_url": "https://x.example/hook"})

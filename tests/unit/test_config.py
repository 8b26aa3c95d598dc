"""Settings from the environment: values that every email depends on are checked up front."""

from __future__ import annotations

import pytest

from engine.config import Settings

SECRET = {"NURTURE_SECRET_KEY": "test-secret"}  # else from_env writes var/secret_key


def test_the_company_website_is_a_setting() -> None:
    assert Settings().company_url is None
    settings = Settings.from_env(
        {**SECRET, "NURTURE_COMPANY_URL": " https://www.flowline.example/ "}
    )
    assert settings.company_url == "https://www.flowline.example/"


@pytest.mark.parametrize(
    "value", ["www.flowline.example", "javascript:alert(1)", "https://", "ftp://x.example"]
)
def test_a_company_url_that_is_not_a_web_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"NURTURE_COMPANY_URL=.* is not a web address"):
        Settings.from_env({**SECRET, "NURTURE_COMPANY_URL": value})

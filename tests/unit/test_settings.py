"""Settings come from RISKWIRE_* variables once; bad values are named; secrets stay hidden."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from service.settings import ENV_PREFIX, Secret, Settings, SettingsError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.segment_write_key is None
    assert settings.segment_batch_url == "https://api.segment.io/v1/batch"
    assert settings.max_body_bytes == 65536
    assert settings.api_keys == ()
    assert settings.admin_api_keys == ()  # the admin API is off unless keys are set
    assert settings.shutdown_flush_s == 5.0


def test_values_are_parsed_and_typed() -> None:
    settings = Settings.from_env(
        {
            "RISKWIRE_PORT": "9001",
            "RISKWIRE_FORWARDER_ENABLED": "false",
            "RISKWIRE_RETRY_BASE_S": "0.25",
            "RISKWIRE_API_KEYS": " k1, k2 ,,",
            "RISKWIRE_ADMIN_API_KEYS": "a1,",
            "RISKWIRE_SHUTDOWN_FLUSH_S": "0",
            "RISKWIRE_SEGMENT_ENDPOINT": "http://localhost:9/",
            "RISKWIRE_FINGERPRINT_SECRET": "",
            "UNRELATED": "x",
        }
    )
    assert settings.port == 9001
    assert settings.forwarder_enabled is False
    assert settings.retry_base_s == 0.25
    assert [k.reveal() for k in settings.api_keys] == ["k1", "k2"]
    assert [k.reveal() for k in settings.admin_api_keys] == ["a1"]
    assert settings.shutdown_flush_s == 0
    assert settings.segment_batch_url == "http://localhost:9/v1/batch"
    assert settings.fingerprint_secret is None  # empty means unset


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"RISKWIRE_PORT": "eighty"}, "RISKWIRE_PORT"),
        ({"RISKWIRE_PORT": "70000"}, "RISKWIRE_PORT"),
        ({"RISKWIRE_MAX_BODY_BYTES": "0"}, "RISKWIRE_MAX_BODY_BYTES"),
        (
            {"RISKWIRE_FORWARDER_BATCH_MAX_MESSAGES": "3000"},
            "RISKWIRE_FORWARDER_BATCH_MAX_MESSAGES",
        ),
        ({"RISKWIRE_REDIS_PREFIX": "a{b}"}, "RISKWIRE_REDIS_PREFIX"),
        ({"RISKWIRE_FORWARDER_ENABLED": "maybe"}, "RISKWIRE_FORWARDER_ENABLED"),
        ({"RISKWIRE_SHUTDOWN_FLUSH_S": "-1"}, "RISKWIRE_SHUTDOWN_FLUSH_S"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_secrets_never_show() -> None:
    settings = Settings.from_env(
        {
            "RISKWIRE_FINGERPRINT_SECRET": "fp-secret-value",
            "RISKWIRE_SEGMENT_WRITE_KEY": "write-key-value",
            "RISKWIRE_API_KEYS": "api-key-value",
            "RISKWIRE_ADMIN_API_KEYS": "admin-key-value",
        }
    )
    for text in (repr(settings), str(settings), f"{settings.segment_write_key}"):
        assert "secret-value" not in text
        assert "key-value" not in text
    assert settings.fingerprint_secret == Secret("fp-secret-value")
    assert settings.fingerprint_secret is not None
    assert settings.fingerprint_secret.reveal() == "fp-secret-value"


def test_every_setting_is_documented_in_the_readme() -> None:
    documented = README.read_text()
    for field in msgspec.structs.fields(Settings):
        assert f"`{ENV_PREFIX}{field.name.upper()}`" in documented, field.name

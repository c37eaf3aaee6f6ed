"""is_secret / mask: secrets never shown, field names and file paths are."""

from __future__ import annotations

import pytest

from relaybit.config.schema import ConfigMap, Option
from relaybit.config.secrets import MASK, is_secret, mask


@pytest.mark.parametrize(
    "key",
    [
        "shared_key",
        "Shared_Key",
        "http_passwd",
        "password",
        "tls.key_passwd",
        "api_key",
        "aws_secret_access_key",
        "token",
        "bearer_token",
        "cloud_auth_key",
    ],
)
def test_secret_keys(key):
    assert is_secret(key)
    assert mask(key, "s3cr3t") == MASK


@pytest.mark.parametrize(
    "key",
    [
        "tag_key",
        "time_key",
        "hash_key",
        "id_key",
        "key_name",
        "message_key",
        "log_key",
        "tls.key_file",
        "host",
        "port",
        "match",
        "include_tag_key",
        "time_key_format",
    ],
)
def test_not_secret_keys(key):
    assert not is_secret(key)
    assert mask(key, "value") == "value"


def test_declared_secret_option_and_empty_value():
    cmap = ConfigMap((Option("credentials", secret=True),))
    assert is_secret("credentials", cmap) and not is_secret("credentials")
    assert mask("shared_key", "") == ""

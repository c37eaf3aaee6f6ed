"""Which configuration keys hold secrets, and masking them for display. Pure."""

from __future__ import annotations

from relaybit.config.schema import ConfigMap

MASK = "******"

#: Keys containing "key" that name a record field, a file or a setting, not a secret.
_NOT_SECRET = frozenset(
    {
        "tag_key",
        "time_key",
        "hash_key",
        "id_key",
        "key_name",
        "message_key",
        "log_key",
        "record_key",
        "routing_key",
        "label_key",
        "include_tag_key",
        "logstash_prefix_key",
        "json_date_key",
        "date_key",
        "time_key_format",
        "key_file",
        "tls.key_file",
        "generate_id_key",
        "key",  # content_modifier: the record field an action applies to
    }
)


def is_secret(key: str, configmap: ConfigMap | None = None) -> bool:
    """True when the value of ``key`` must never be shown (``shared_key``, passwords).

    An option declared ``secret=True`` in ``configmap`` is secret; otherwise any
    key containing ``key``, ``passw``, ``secret`` or ``token`` is, except names
    of record fields and files (``tag_key``, ``time_key``, ``key_name``,
    ``tls.key_file`` ...).
    """
    low = key.lower()
    if configmap is not None:
        opt = configmap.get(low)
        if opt is not None and opt.secret:
            return True
    if any(word in low for word in ("passw", "secret", "token")):
        return True
    if "key" not in low or low in _NOT_SECRET:
        return False
    return not low.endswith(("_file", "_path", "_format"))


def mask(key: str, value: str, configmap: ConfigMap | None = None) -> str:
    """``value``, or ``******`` when ``key`` is secret (and the value not empty)."""
    return MASK if value and is_secret(key, configmap) else value

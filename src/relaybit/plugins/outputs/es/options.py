"""The ``es`` output's keys (Fluent Bit's out_es names) and its per-node settings."""

from __future__ import annotations

import base64
import binascii

from relaybit.config.schema import ConfigMap, Option, Options
from relaybit.errors import ConfigError
from relaybit.plugins.outputs.es.settings import WRITE_OPERATIONS, EsSettings
from relaybit.plugins.outputs.http.options import AWS_REFUSED, CONNECTION_OPTIONS

OPTIONS = (
    ConfigMap(
        (
            Option("port", "port", 9200, "Port of the single node (without upstream)"),
            Option("index", "str", "fluent-bit", "Index name", per_node=True),
            Option("type", "str", "_doc", "Document type (_type)", per_node=True),
            Option(
                "logstash_format",
                "bool",
                False,
                "Index per day: logstash_prefix-YYYY.MM.DD",
                per_node=True,
            ),
            Option(
                "logstash_prefix", "str", "logstash", "Prefix of logstash indices", per_node=True
            ),
            Option(
                "logstash_prefix_key",
                "str",
                None,
                "Record key whose value replaces logstash_prefix",
                per_node=True,
            ),
            Option(
                "logstash_prefix_separator",
                "str",
                "-",
                "Between prefix and date",
                per_node=True,
            ),
            Option(
                "logstash_dateformat",
                "str",
                "%Y.%m.%d",
                "strftime format of the index date",
                per_node=True,
            ),
            Option("time_key", "str", "@timestamp", "Key of the record time", per_node=True),
            Option(
                "time_key_format",
                "str",
                "%Y-%m-%dT%H:%M:%S",
                "strftime format of time_key (milliseconds and Z appended)",
                per_node=True,
            ),
            Option(
                "time_key_nanos",
                "bool",
                False,
                "Nanoseconds instead of milliseconds",
                per_node=True,
            ),
            Option("include_tag_key", "bool", False, "Add the tag under tag_key", per_node=True),
            Option("tag_key", "str", "_flb-key", "Key of the tag", per_node=True),
            Option(
                "generate_id",
                "bool",
                False,
                "_id from a hash of the record (re-sends become 409, not duplicates)",
                per_node=True,
            ),
            Option("id_key", "str", None, "Record key whose value becomes _id", per_node=True),
            Option("replace_dots", "bool", False, "Replace dots in keys with _", per_node=True),
            Option("suppress_type_name", "bool", False, "Leave _type out", per_node=True),
            Option(
                "current_time_index",
                "bool",
                False,
                "Logstash index of the current time, not the record's",
                per_node=True,
            ),
            Option(
                "write_operation",
                "str",
                "create",
                "Bulk action",
                choices=WRITE_OPERATIONS,
                per_node=True,
            ),
            Option("pipeline", "str", None, "Ingest pipeline", per_node=True),
            Option("path", "str", "", "Path prefix of the Bulk API URL", per_node=True),
            Option(
                "buffer_size",
                "str",
                "512k",
                "Accepted; relaybit always reads the whole bulk response",
            ),
            Option("trace_output", "bool", False, "Log every bulk request body"),
            Option("trace_error", "bool", False, "Log failed items with their request"),
            Option("cloud_id", "str", None, "Elastic Cloud ID (sets host, port 443 and tls)"),
            Option("cloud_auth", "str", None, "Elastic Cloud 'user:password'", secret=True),
            Option(
                "http_api_key",
                "str",
                None,
                "API key: 'Authorization: ApiKey KEY' (http_user wins when both are set)",
                per_node=True,
                secret=True,
            ),
            Option("upstream", "str", None, "Upstream file with the nodes (read by the loader)"),
            Option("aws_auth", "bool", False, "AWS SigV4 request signing", refused=AWS_REFUSED),
            *(
                Option(
                    key,
                    "str",
                    default,
                    "AWS setting of aws_auth",
                    no_effect="only aws_auth uses it, and relaybit refuses aws_auth",
                )
                for key, default in (
                    ("aws_region", None),
                    ("aws_sts_endpoint", None),
                    ("aws_role_arn", None),
                    ("aws_external_id", None),
                    ("aws_service_name", "es"),
                    ("aws_profile", None),
                )
            ),
        )
    )
    + CONNECTION_OPTIONS
)


def check_write_operation(settings: EsSettings, opts: Options, section: str) -> None:
    """update and upsert need an _id: ``id_key`` or ``generate_id`` (as Fluent Bit)."""
    if settings.write_operation in ("update", "upsert") and not (
        settings.id_key or settings.generate_id
    ):
        raise ConfigError(
            f"write_operation {settings.write_operation} needs id_key or generate_id on",
            opts.origin("write_operation"),
            section=section,
            key="write_operation",
        )


def decode_cloud_id(cloud_id: str) -> tuple[str, int]:
    """Host and port of an Elastic Cloud ID (``name:base64(domain$es_uuid$kibana_uuid)``)."""
    _, _, encoded = cloud_id.rpartition(":")
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("cloud_id is not valid base64") from None
    parts = decoded.split("$")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError("cloud_id does not hold a domain and an Elasticsearch id")
    domain, _, port = parts[0].partition(":")
    return f"{parts[1]}.{domain}", int(port) if port.isdigit() else 443

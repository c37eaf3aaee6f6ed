"""What builds a bulk request for one node: the ``es`` output's settings, node keys over
output keys.  Kept apart from the option tables: an encoder process needs only this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WRITE_OPERATIONS = ("create", "index", "update", "upsert")


@dataclass(frozen=True, slots=True, kw_only=True)
class EsSettings:
    """What builds a bulk request for one node (node keys over output keys)."""

    index: str = "fluent-bit"
    type: str = "_doc"
    logstash_format: bool = False
    logstash_prefix: str = "logstash"
    logstash_prefix_key: str | None = None
    logstash_prefix_separator: str = "-"
    logstash_dateformat: str = "%Y.%m.%d"
    time_key: str = "@timestamp"
    time_key_format: str = "%Y-%m-%dT%H:%M:%S"
    time_key_nanos: bool = False
    include_tag_key: bool = False
    tag_key: str = "_flb-key"
    generate_id: bool = False
    id_key: str | None = None
    replace_dots: bool = False
    suppress_type_name: bool = False
    current_time_index: bool = False
    write_operation: str = "create"
    pipeline: str | None = None
    path: str = ""

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> EsSettings:
        return cls(
            index=str(values.get("index") or "fluent-bit"),
            type=str(values.get("type") or "_doc"),
            logstash_format=bool(values.get("logstash_format")),
            logstash_prefix=str(values.get("logstash_prefix") or "logstash"),
            logstash_prefix_key=values.get("logstash_prefix_key"),
            logstash_prefix_separator=str(values.get("logstash_prefix_separator") or ""),
            logstash_dateformat=str(values.get("logstash_dateformat") or "%Y.%m.%d"),
            time_key=str(values.get("time_key") or "@timestamp"),
            time_key_format=str(values.get("time_key_format") or "%Y-%m-%dT%H:%M:%S"),
            time_key_nanos=bool(values.get("time_key_nanos")),
            include_tag_key=bool(values.get("include_tag_key")),
            tag_key=str(values.get("tag_key") or "_flb-key"),
            generate_id=bool(values.get("generate_id")),
            id_key=values.get("id_key"),
            replace_dots=bool(values.get("replace_dots")),
            suppress_type_name=bool(values.get("suppress_type_name")),
            current_time_index=bool(values.get("current_time_index")),
            write_operation=str(values.get("write_operation") or "create").lower(),
            pipeline=values.get("pipeline"),
            path=str(values.get("path") or "").rstrip("/"),
        )

    def bulk_path(self) -> str:
        """The request path: ``{path}/_bulk`` with ``?pipeline=`` when set."""
        url = f"{self.path}/_bulk"
        return f"{url}?pipeline={self.pipeline}" if self.pipeline else url

"""Fluent Bit's stock parsers (``conf/parsers.conf`` of Fluent Bit 5.1.1), available by name.

The definitions are Fluent Bit 5.1.1's, key for key (a test compares them with
that file when its sources are at hand).  Fluent Bit itself only has them when
``parsers_file`` names that file; relaybit has them built in.  A ``[PARSER]``
of the same name in the user's files replaces the built-in one
(:func:`with_builtins`).
"""

from __future__ import annotations

from collections.abc import Mapping

from relaybit.config.model import Section
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.parsers.base import Parser

_HTTP = (
    r'\[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)?" '
    r'(?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)")?$'
)
_CLF_TIME = "%d/%b/%Y:%H:%M:%S %z"

DEFINITIONS: tuple[dict[str, str], ...] = (
    {
        "name": "apache",
        "format": "regex",
        "regex": r"^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) " + _HTTP,
        "time_key": "time",
        "time_format": _CLF_TIME,
    },
    {
        "name": "apache2",
        "format": "regex",
        "regex": r"^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "
        r'"(?<method>\S+)(?: +(?<path>[^ ]*) +\S*)?" (?<code>[^ ]*) (?<size>[^ ]*)'
        r'(?: "(?<referer>[^\"]*)" "(?<agent>.*)")?$',
        "time_key": "time",
        "time_format": _CLF_TIME,
    },
    {
        "name": "apache_error",
        "format": "regex",
        "regex": r"^\[[^ ]* (?<time>[^\]]*)\] \[(?<level>[^\]]*)\](?: \[pid (?<pid>[^\]]*)\])?"
        r"( \[client (?<client>[^\]]*)\])? (?<message>.*)$",
    },
    {
        "name": "nginx",
        "format": "regex",
        "regex": r"^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) \[(?<time>[^\]]*)\] "
        r'"(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*)'
        r'(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)")',
        "time_key": "time",
        "time_format": _CLF_TIME,
    },
    {
        "name": "k8s-nginx-ingress",
        "format": "regex",
        "regex": r"^(?<host>[^ ]*) - (?<user>[^ ]*) \[(?<time>[^\]]*)\] "
        r'"(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*) '
        r'"(?<referer>[^\"]*)" "(?<agent>[^\"]*)" (?<request_length>[^ ]*) '
        r"(?<request_time>[^ ]*) \[(?<proxy_upstream_name>[^ ]*)\] "
        r"(\[(?<proxy_alternative_upstream_name>[^ ]*)\] )?(?<upstream_addr>[^ ]*) "
        r"(?<upstream_response_length>[^ ]*) (?<upstream_response_time>[^ ]*) "
        r"(?<upstream_status>[^ ]*) (?<reg_id>[^ ]*).*$",
        "time_key": "time",
        "time_format": _CLF_TIME,
    },
    {
        "name": "json",
        "format": "json",
        "time_key": "time",
        "time_format": _CLF_TIME,
    },
    {
        "name": "logfmt",
        "format": "logfmt",
    },
    {
        "name": "docker",
        "format": "json",
        "time_key": "time",
        "time_format": "%Y-%m-%dT%H:%M:%S.%L",
        "time_keep": "on",
    },
    {
        "name": "docker-daemon",
        "format": "regex",
        "regex": r'time="(?<time>[^ ]*)" level=(?<level>[^ ]*) msg="(?<msg>[^ ].*)"',
        "time_key": "time",
        "time_format": "%Y-%m-%dT%H:%M:%S.%L",
        "time_keep": "on",
    },
    {
        "name": "syslog-rfc5424",
        "format": "regex",
        "regex": r"^\<(?<pri>[0-9]{1,5})\>1 (?<time>[^ ]+) (?<host>[^ ]+) (?<ident>[^ ]+) "
        r"(?<pid>[-0-9]+) (?<msgid>[^ ]+) (?<extradata>(\[(.*?)\]|-)) (?<message>.+)$",
        "time_key": "time",
        "time_format": "%Y-%m-%dT%H:%M:%S.%L%z",
        "time_keep": "on",
    },
    {
        "name": "syslog-rfc3164-local",
        "format": "regex",
        "regex": r"^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) "
        r"(?<ident>[a-zA-Z0-9_\/\.\-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$",
        "time_key": "time",
        "time_format": "%b %d %H:%M:%S",
        "time_keep": "on",
    },
    {
        "name": "syslog-rfc3164",
        "format": "regex",
        "regex": r"/^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<host>[^ ]*) "
        r"(?<ident>[a-zA-Z0-9_\/\.\-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$/",
        "time_key": "time",
        "time_format": "%b %d %H:%M:%S",
        "time_keep": "on",
    },
    {
        "name": "mongodb",
        "format": "regex",
        "regex": r"^(?<time>[^ ]*)\s+(?<severity>\w)\s+(?<component>[^ ]+)\s+"
        r"\[(?<context>[^\]]+)]\s+(?<message>.*?) *(?<ms>(\d+))?(:?ms)?$",
        "time_format": "%Y-%m-%dT%H:%M:%S.%L",
        "time_keep": "on",
        "time_key": "time",
    },
    {
        "name": "envoy",
        "format": "regex",
        "regex": r'^\[(?<start_time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)? '
        r'(?<protocol>\S+)" (?<code>[^ ]*) (?<response_flags>[^ ]*) (?<bytes_received>[^ ]*) '
        r"(?<bytes_sent>[^ ]*) (?<duration>[^ ]*) (?<x_envoy_upstream_service_time>[^ ]*) "
        r'"(?<x_forwarded_for>[^ ]*)" "(?<user_agent>[^\"]*)" "(?<request_id>[^\"]*)" '
        r'"(?<authority>[^ ]*)" "(?<upstream_host>[^ ]*)"',
        "time_format": "%Y-%m-%dT%H:%M:%S.%L%z",
        "time_keep": "on",
        "time_key": "start_time",
    },
    {
        "name": "istio-envoy-proxy",
        "format": "regex",
        "regex": r'^\[(?<start_time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)? '
        r'(?<protocol>\S+)" (?<response_code>[^ ]*) (?<response_flags>[^ ]*) '
        r"(?<response_code_details>[^ ]*) (?<connection_termination_details>[^ ]*) "
        r'"(?<upstream_transport_failure_reason>[^ ]*)" (?<bytes_received>[^ ]*) '
        r"(?<bytes_sent>[^ ]*) (?<duration>[^ ]*) (?<x_envoy_upstream_service_time>[^ ]*) "
        r'"(?<x_forwarded_for>[^ ]*)" "(?<user_agent>[^\"]*)" "(?<x_request_id>[^\"]*)" '
        r'"(?<authority>[^ ]*)" "(?<upstream_host>[^ ]*)" (?<upstream_cluster>[^ ]*) '
        r"(?<upstream_local_address>[^ ]*) (?<downstream_local_address>[^ ]*) "
        r"(?<downstream_remote_address>[^ ]*) (?<requested_server_name>[^ ]*) "
        r"(?<route_name>[^  ]*)$",
        "time_format": "%Y-%m-%dT%H:%M:%S.%L%z",
        "time_keep": "on",
        "time_key": "start_time",
    },
    {
        "name": "cri",
        "format": "regex",
        "regex": r"^(?<time>[^ ]+) (?<stream>stdout|stderr) (?<logtag>[^ ]*) (?<message>.*)$",
        "time_key": "time",
        "time_format": "%Y-%m-%dT%H:%M:%S.%L%z",
        "time_keep": "on",
    },
    {
        "name": "kube-custom",
        "format": "regex",
        "regex": r"(?<tag>[^.]+)?\.?(?<pod_name>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
        r"(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)_(?<namespace_name>[^_]+)_"
        r"(?<container_name>.+)-(?<docker_id>[a-z0-9]{64})\.log$",
    },
    {
        "name": "kmsg-netfilter-log",
        "format": "regex",
        "regex": r"^\<(?<pri>[0-9]{1,5})\>1 (?<time>[^ ]+) (?<host>[^ ]+) kernel - - - "
        r"\[[0-9\.]*\] (?<logprefix>[^ ]*)\s?IN=(?<in>[^ ]*) OUT=(?<out>[^ ]*) "
        r"MAC=(?<macsrc>[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}):"
        r"(?<macdst>[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}):"
        r"(?<ethtype>[0-9a-f]{2}:[0-9a-f]{2}) SRC=(?<saddr>[^ ]*) DST=(?<daddr>[^ ]*) "
        r"LEN=(?<len>[^ ]*) TOS=(?<tos>[^ ]*) PREC=(?<prec>[^ ]*) TTL=(?<ttl>[^ ]*) "
        r"ID=(?<id>[^ ]*) (D*F*)\s*PROTO=(?<proto>[^ ]*)\s?((SPT=)?(?<sport>[0-9]*))\s?"
        r"((DPT=)?(?<dport>[0-9]*))\s?((LEN=)?(?<protolen>[0-9]*))\s?"
        r"((WINDOW=)?(?<window>[0-9]*))\s?((RES=)?(?<res>0?x?[0-9]*))\s?(?<flag>[^ ]*)\s?"
        r"((URGP=)?(?<urgp>[0-9]*))",
        "time_key": "time",
        "time_format": "%Y-%m-%dT%H:%M:%S.%L%z",
    },
)


def builtin_sections() -> list[Section]:
    """The stock definitions as ``[PARSER]`` sections (origin ``<builtin parsers>``)."""
    sections: list[Section] = []
    for index, definition in enumerate(DEFINITIONS, start=1):
        origin = Origin("<builtin parsers>", index)
        props = tuple(RawProperty(k, v, origin) for k, v in definition.items())
        sections.append(Section(kind="parser", properties=props, origin=origin))
    return sections


def _build() -> dict[str, Parser]:
    from relaybit.parsers.options import build_parsers

    return build_parsers(builtin_sections())


BUILTIN_PARSERS: Mapping[str, Parser] = _build()


def with_builtins(user: Mapping[str, Parser]) -> dict[str, Parser]:
    """The built-in parsers overlaid with the user's (a user parser wins by name)."""
    merged: dict[str, Parser] = dict(BUILTIN_PARSERS)
    merged.update(user)
    return merged

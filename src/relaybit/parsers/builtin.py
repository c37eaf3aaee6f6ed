"""Fluent Bit's stock parsers (``conf/parsers.conf``), available by name.

A ``[PARSER]`` of the same name in the user's files replaces the built-in one
(:func:`with_builtins`).  One deliberate change: ``syslog-rfc5424`` reads the
zone (``%L%z``) instead of ignoring it, so ``...T05:14:15.000003-07:00`` lands
at the right instant; ``syslog-rfc3164`` has its single ``%b %d %H:%M:%S``
format (Fluent Bit's file lists two ``Time_Format`` lines).
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
        "regex": r"^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) " + _HTTP,
        "time_key": "time",
        "time_format": _CLF_TIME,
    },
    {
        "name": "k8s-nginx-ingress",
        "format": "regex",
        "regex": r"^(?<host>[^ ]*) - \[(?<real_ip>[^ ]*)\] - (?<user>[^ ]*) \[(?<time>[^\]]*)\] "
        r'"(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*) '
        r'"(?<referer>[^\"]*)" "(?<agent>[^\"]*)" (?<request_length>[^ ]*) '
        r"(?<request_time>[^ ]*) \[(?<proxy_upstream_name>[^ ]*)\] (?<upstream_addr>[^ ]*) "
        r"(?<upstream_response_length>[^ ]*) (?<upstream_response_time>[^ ]*) "
        r"(?<upstream_status>[^ ]*) (?<last>[^$]*)",
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
        "decode_field_as": "escaped_utf8 log do_next",
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
        r"(?<pid>[-0-9]+) (?<msgid>[^ ]+) (?<extradata>(\[(.*)\]|-)) (?<message>.+)$",
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
        "name": "cri",
        "format": "regex",
        "regex": r"^(?<time>[^ ]+) (?<stream>stdout|stderr) (?<logtag>[^ ]*) (?<message>.*)$",
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

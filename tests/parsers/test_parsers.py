"""[PARSER] sections -> parsers, on real log lines."""

from __future__ import annotations

import calendar

import pytest

from relaybit.codec.msgpack import EventTime
from relaybit.config.model import Section
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigErrors
from relaybit.parsers import BUILTIN_PARSERS, Parser, build_parsers, with_builtins
from relaybit.parsers.regex import to_python_regex

PATH = "/etc/relaybit/parsers.conf"


def section(start_line: int, **props: str) -> Section:
    """A [PARSER] section whose keys sit on consecutive lines after ``start_line``."""
    items = tuple(
        RawProperty(k, v, Origin(PATH, start_line + i + 1))
        for i, (k, v) in enumerate(props.items())
    )
    return Section(kind="parser", properties=items, origin=Origin(PATH, start_line))


def one(**props: str) -> Parser:
    parsers = build_parsers([section(1, **props)])
    return parsers[props["name"]]


def utc(*fields: int) -> int:
    return calendar.timegm((*fields, 0, 0, 0)[:6])


# ---------------------------------------------------------------- regex


def test_regex_named_groups_time_and_types() -> None:
    p = one(
        name="app",
        format="regex",
        regex=r"^(?<time>[^ ]+) \[(?<level>\w+)\] (?<pid>\d+) (?<took>[\d.]+)ms (?<message>.*)$",
        time_key="time",
        time_format="%Y-%m-%dT%H:%M:%S.%L%z",
        types="pid:integer took:float",
    )
    result = p.parse("2024-03-01T10:00:00.123+01:00 [WARN] 4242 12.5ms disk almost full")
    assert result == (
        EventTime(utc(2024, 3, 1, 9, 0, 0), 123_000_000),
        {"level": "WARN", "pid": 4242, "took": 12.5, "message": "disk almost full"},
    )


def test_regex_time_keep_and_no_match() -> None:
    p = one(
        name="k",
        format="regex",
        regex=r"^(?<time>\S+ \S+) (?<msg>.+)$",
        time_format="%Y-%m-%d %H:%M:%S",
        time_keep="on",
    )
    when, record = p.parse("2024-01-01 00:00:01 hello") or (None, {})
    assert when == EventTime(utc(2024, 1, 1, 0, 0, 1))
    assert record == {"time": "2024-01-01 00:00:01", "msg": "hello"}
    assert p.parse("no spaces") is None


def test_regex_is_searched_not_anchored() -> None:
    p = one(name="s", format="regex", regex=r"user=(?<user>\w+)")
    assert p.parse("GET / user=alice ok") == (None, {"user": "alice"})


def test_regex_skip_empty_values() -> None:
    regex = r"^(?<a>\w*),(?<b>\w*)$"
    assert one(name="x", format="regex", regex=regex).parse("1,") == (None, {"a": "1"})
    keep = one(name="y", format="regex", regex=regex, skip_empty_values="off")
    assert keep.parse("1,") == (None, {"a": "1", "b": ""})


def test_bad_time_keeps_the_field_and_leaves_time_unset() -> None:
    p = one(name="t", format="regex", regex=r"^(?<time>\S+) (?<m>.*)$", time_format="%Y-%m-%d")
    assert p.parse("yesterday hi") == (None, {"time": "yesterday", "m": "hi"})


def test_types_that_do_not_convert_stay_strings() -> None:
    p = one(
        name="t",
        format="regex",
        regex=r"^(?<n>\S+) (?<h>\S+) (?<b>\S+)$",
        types="n:integer h:hex b:bool",
    )
    assert p.parse("12 ff TRUE") == (None, {"n": 12, "h": 255, "b": True})
    assert p.parse("x zz maybe") == (None, {"n": "x", "h": "zz", "b": "maybe"})


@pytest.mark.parametrize(
    ("onigmo", "python"),
    [
        (r"(?<name>\w+)", r"(?P<name>\w+)"),
        (r"(?<=a)b(?<!c)", r"(?<=a)b(?<!c)"),  # lookbehinds untouched
        (r"[(?<x>)]", r"[(?<x>)]"),  # inside a class: literal
        (r"\h+", r"[0-9a-fA-F]+"),
        (r"[\h-]", r"[0-9a-fA-F-]"),
        (r"(?<a>.)\k<a>", r"(?P<a>.)(?P=a)"),
        (r"abc\z", r"abc\Z"),
        (r"\\(?<n>x)", r"\\(?P<n>x)"),
    ],
)
def test_onigmo_translation(onigmo: str, python: str) -> None:
    assert to_python_regex(onigmo)[0] == python


def test_slash_wrapped_regex_with_options() -> None:
    p = one(name="w", format="regex", regex=r"/^(?<word>hello)$/i")
    assert p.parse("HELLO") == (None, {"word": "HELLO"})


# ---------------------------------------------------------------- json


def test_json_with_time_and_nested_values() -> None:
    p = one(name="j", format="json", time_key="ts", time_format="%s")
    line = '{"ts": 1700000000, "level": "info", "http": {"status": 200}, "tags": ["a", "b"]}'
    assert p.parse(line) == (
        EventTime(1700000000),
        {"level": "info", "http": {"status": 200}, "tags": ["a", "b"]},
    )


@pytest.mark.parametrize("line", ["[1, 2]", "42", "not json", '{"unterminated": ', ""])
def test_json_non_objects_do_not_match(line: str) -> None:
    assert one(name="j", format="json").parse(line) is None


def test_json_decode_field_as_json() -> None:
    p = one(name="j", format="json", decode_field_as="json log")
    line = '{"log": "{\\"user\\": \\"bob\\", \\"n\\": 1}", "stream": "stdout"}'
    assert p.parse(line) == (None, {"log": {"user": "bob", "n": 1}, "stream": "stdout"})


def test_json_decode_field_merges_map() -> None:
    p = one(name="j", format="json", decode_field="json log")
    line = '{"log": "{\\"user\\": \\"bob\\"}", "stream": "stdout"}'
    # as Fluent Bit 5.1.1: the field stays, the map's keys are appended
    assert p.parse(line) == (None, {"log": '{"user": "bob"}', "stream": "stdout", "user": "bob"})
    # a value that is not JSON stays as it was
    assert p.parse('{"log": "plain text"}') == (None, {"log": "plain text"})


# ---------------------------------------------------------------- logfmt / ltsv


def test_logfmt_real_line() -> None:
    p = one(name="l", format="logfmt", time_format="%Y-%m-%dT%H:%M:%S%z", types="status:integer")
    line = (
        'time=2024-05-01T12:00:00Z level=error msg="upstream \\"api\\" timed out" '
        'status=504 retry path=/v1/users empty= quoted=""'
    )
    assert p.parse(line) == (
        EventTime(utc(2024, 5, 1, 12, 0, 0)),
        {
            "level": "error",
            "msg": 'upstream "api" timed out',
            "status": 504,
            "retry": True,
            "path": "/v1/users",
            "empty": True,
            "quoted": "",
        },
    )


def test_logfmt_stops_at_newline_and_no_bare_keys() -> None:
    p = one(name="l", format="logfmt")
    assert p.parse("a=1 b=2\nc=3") == (None, {"a": "1", "b": "2"})
    strict = one(name="s", format="logfmt", logfmt_no_bare_keys="on")
    assert strict.parse("a=1 bare") is None
    assert strict.parse("a=1") == (None, {"a": "1"})
    assert p.parse("   ") is None


def test_ltsv() -> None:
    p = one(name="t", format="ltsv", types="size:integer")
    assert p.parse("host:127.0.0.1\tident:-\tsize:512\n") == (
        None,
        {"host": "127.0.0.1", "ident": "-", "size": 512},
    )


# ---------------------------------------------------------------- built-in parsers on real samples


def test_builtin_nginx() -> None:
    line = (
        '93.184.216.34 - frank [10/Oct/2023:13:55:36 -0700] "GET /index.html?q=1 HTTP/1.1" '
        '200 2326 "http://example.com/start" "Mozilla/5.0 (X11; Linux x86_64)"'
    )
    assert BUILTIN_PARSERS["nginx"].parse(line) == (
        EventTime(utc(2023, 10, 10, 20, 55, 36)),
        {
            "remote": "93.184.216.34",
            "host": "-",
            "user": "frank",
            "method": "GET",
            "path": "/index.html?q=1",
            "code": "200",
            "size": "2326",
            "referer": "http://example.com/start",
            "agent": "Mozilla/5.0 (X11; Linux x86_64)",
        },
    )


def test_builtin_apache_common_and_combined() -> None:
    common = '192.168.0.1 - - [28/Jul/2006:10:27:10 -0300] "GET /cgi-bin/try/ HTTP/1.0" 200 3395'
    when, record = BUILTIN_PARSERS["apache"].parse(common) or (None, {})
    assert when == EventTime(utc(2006, 7, 28, 13, 27, 10))
    assert record == {
        "host": "192.168.0.1",
        "user": "-",
        "method": "GET",
        "path": "/cgi-bin/try/",
        "code": "200",
        "size": "3395",
    }
    combined = (
        '127.0.0.1 - bob [01/Jan/2024:00:00:00 +0000] "POST /login HTTP/1.1" 302 - '
        '"https://site/" "curl/8.5.0"'
    )
    _, rec2 = BUILTIN_PARSERS["apache2"].parse(combined) or (None, {})
    assert rec2["agent"] == "curl/8.5.0" and rec2["size"] == "-" and rec2["user"] == "bob"


def test_builtin_apache_error() -> None:
    line = (
        "[Wed Oct 11 14:32:52.123456 2023] [core:error] [pid 35708:tid 4328636416] "
        "[client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico"
    )
    _, record = BUILTIN_PARSERS["apache_error"].parse(line) or (None, {})
    assert record["level"] == "core:error"
    assert record["client"] == "72.15.99.187"
    assert record["message"].startswith("File does not exist")


def test_builtin_syslog_rfc5424() -> None:
    line = (
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - "
        "%% It's time to make the do-nuts."
    )
    assert BUILTIN_PARSERS["syslog-rfc5424"].parse(line) == (
        EventTime(utc(2003, 8, 24, 12, 14, 15), 3000),
        {
            "pri": "165",
            "time": "2003-08-24T05:14:15.000003-07:00",
            "host": "192.0.2.1",
            "ident": "myproc",
            "pid": "8710",
            "msgid": "-",
            "extradata": "-",
            "message": "%% It's time to make the do-nuts.",
        },
    )


def test_builtin_syslog_rfc3164() -> None:
    line = "<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8"
    when, record = BUILTIN_PARSERS["syslog-rfc3164"].parse(line) or (None, {})
    assert when is not None
    assert record == {
        "pri": "34",
        "time": "Oct 11 22:14:15",
        "host": "mymachine",
        "ident": "su",
        "pid": "230",
        "message": "'su root' failed for lonvick on /dev/pts/8",
    }


def test_builtin_docker_and_cri() -> None:
    docker = (
        '{"log":"GET /healthz 200\\n","stream":"stdout","time":"2018-06-11T14:37:30.681701731Z"}'
    )
    assert BUILTIN_PARSERS["docker"].parse(docker) == (
        EventTime(utc(2018, 6, 11, 14, 37, 30), 681701731),
        {"log": "GET /healthz 200\n", "stream": "stdout", "time": "2018-06-11T14:37:30.681701731Z"},
    )
    cri = "2024-01-02T03:04:05.123456789+00:00 stderr F panic: boom"
    assert BUILTIN_PARSERS["cri"].parse(cri) == (  # Time_Keep On, as Fluent Bit 5.1.1's
        EventTime(utc(2024, 1, 2, 3, 4, 5), 123456789),
        {
            "time": "2024-01-02T03:04:05.123456789+00:00",
            "stream": "stderr",
            "logtag": "F",
            "message": "panic: boom",
        },
    )


def test_user_parser_overrides_builtin() -> None:
    mine = build_parsers([section(1, name="json", format="json")])
    merged = with_builtins(mine)
    assert merged["json"] is mine["json"]
    assert merged["nginx"] is BUILTIN_PARSERS["nginx"]


# ---------------------------------------------------------------- errors name file:line and key


def test_errors_are_collected_with_origins() -> None:
    sections = [
        section(1, name="a", format="regex", regex="(?<x>unclosed"),
        section(10, name="b", format="csv"),
        section(20, name="c", format="regex"),
        section(30, name="d", format="json", time_format="%Q"),
        section(40, format="json"),
        section(50, name="e", format="json", types="n:number"),
        section(60, name="f", format="json", time_offset="+9"),
        section(70, name="g", format="json", decode_field="base64 log"),
        section(80, name="h", format="json", tiem_key="t"),
    ]
    with pytest.raises(ConfigErrors) as info:
        build_parsers(sections)
    text = str(info.value)
    lines = text.splitlines()
    assert len(lines) == 9, text
    assert f"{PATH}:4:" in lines[0] and "regex" in lines[0]
    assert f"{PATH}:12:" in lines[1] and "json, regex, logfmt, ltsv" in lines[1]
    assert f"{PATH}:20:" in lines[2] and "needs a 'regex'" in lines[2]
    assert f"{PATH}:33:" in lines[3] and "%Q" in lines[3]
    assert f"{PATH}:40:" in lines[4] and "missing 'name'" in lines[4]
    assert f"{PATH}:53:" in lines[5] and "KEY:TYPE" in lines[5]
    assert f"{PATH}:63:" in lines[6] and "offset" in lines[6]
    assert f"{PATH}:73:" in lines[7] and "DECODER" in lines[7]
    assert f"{PATH}:83:" in lines[8] and "did you mean 'time_key'" in lines[8]


def test_duplicate_name_is_an_error() -> None:
    with pytest.raises(ConfigErrors, match="defined twice"):
        build_parsers([section(1, name="x", format="json"), section(5, name="x", format="logfmt")])


def test_empty_values_count_as_unset() -> None:
    p = one(name="j", format="json", time_format="")
    assert p.parse('{"time": "x"}') == (None, {"time": "x"})

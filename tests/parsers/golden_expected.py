"""Golden outputs of test_golden.py (generated: python tests/parsers/test_golden.py --write)."""

from __future__ import annotations

import calendar
import time

from relaybit.codec.msgpack import EventTime


def yearless(
    month: int, day: int, hour: int, minute: int, second: int, nanos: int = 0
) -> EventTime:
    """A time whose format has no year: Fluent Bit takes the current one."""
    year = time.gmtime().tm_year
    return EventTime(calendar.timegm((year, month, day, hour, minute, second)), nanos)


PARSE = {
    "json": [
        (
            None,
            {
                "ts": "2024-05-01T12:00:00.123Z",
                "level": "info",
                "seq": 1,
                "host": "web-01",
                "msg": "request served",
            },
        ),
        (EventTime(seconds=1696971336, nanoseconds=0), {"msg": "clf time"}),
        (None, {"time": "not a time", "n": -9223372036854775808, "u": 18446744073709551615}),
        (
            None,
            {"big": 1.2345678901234568e29, "neg": -1.8446744073709552e19, "f": 1.5e300, "e": 1e-07},
        ),
        (
            None,
            {"nested": {"a": [1, 2, {"b": None}], "t": True, "f": False}, "empty": {}, "list": []},
        ),
        (None, {"uni": "café 😀 ✓", "nul": "a\x00b", "esc": 'tab\there\n"q"'}),
        (None, {"lone": "cut \ufffd", "raw": "\udcff\udcfe bytes"}),
        (None, {"padded": 1}),
        None,
        None,
        None,
        None,
        (None, {"dup": 2}),
        (None, {"time": 1700000000}),
    ],
    "app_json": [
        (
            EventTime(seconds=1714557600, nanoseconds=123456789),
            {"seq": 7, "took": 12.5, "ok": True, "msg": "x"},
        ),
        (
            EventTime(seconds=1714564800, nanoseconds=100000000),
            {"seq": "8", "took": "n/a", "ok": "maybe"},
        ),
        (None, {"ts": "2024-05-01T12:00:00Z", "msg": "no fraction"}),
        (None, {"ts": "2024-02-30T12:00:00.000Z", "msg": "bad day"}),
        (None, {"msg": "no ts"}),
        (None, {"ts": 12345, "msg": "number ts"}),
    ],
    "app_json_keep": [
        (
            EventTime(seconds=1714590000, nanoseconds=500000000),
            {"ts": "2024-05-01T12:00:00.5-07:00", "msg": "kept"},
        ),
        (
            EventTime(seconds=1714590000, nanoseconds=500000000),
            {"ts": "2024-05-01T12:00:00.5-07:00", "msg": "kept again"},
        ),
    ],
    "epoch_json": [
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"m": 1}),
        (EventTime(seconds=1700000001, nanoseconds=1), {"m": 2}),
        (None, {"t": "99999999999.5", "m": 3}),
    ],
    "apache": [
        (
            EventTime(seconds=1696971336, nanoseconds=0),
            {
                "host": "192.168.0.1",
                "user": "frank",
                "method": "GET",
                "path": "/apache_pb.gif",
                "code": "200",
                "size": "2326",
                "referer": "http://www.example.com/start.html",
                "agent": "Mozilla/4.08 [en] (Win98; I ;Nav)",
            },
        ),
        (
            EventTime(seconds=1714564805, nanoseconds=0),
            {
                "host": "10.0.0.7",
                "user": "-",
                "method": "POST",
                "path": "/api/v1/items?id=42",
                "code": "201",
                "size": "-",
            },
        ),
        (
            EventTime(seconds=1714557605, nanoseconds=0),
            {
                "host": "10.0.0.8",
                "user": "-",
                "method": "GET",
                "path": "/café/\udcff\udcfe",
                "code": "404",
                "size": "153",
                "referer": "-",
                "agent": "curl/8.0 ✓",
            },
        ),
        (
            EventTime(seconds=1704067200, nanoseconds=0),
            {
                "host": "10.0.0.9",
                "user": "-",
                "method": "-",
                "code": "400",
                "size": "0",
                "referer": "-",
                "agent": "-",
            },
        ),
        None,
        (
            None,
            {
                "host": "10.0.0.9",
                "user": "-",
                "time": "99/Foo/2023:23:59:59 +0000",
                "method": "GET",
                "path": "/",
                "code": "200",
                "size": "1",
                "referer": "-",
                "agent": "-",
            },
        ),
    ],
    "apache2": [
        (
            EventTime(seconds=1696971336, nanoseconds=0),
            {
                "host": "192.168.0.1",
                "user": "frank",
                "method": "GET",
                "path": "/apache_pb.gif",
                "code": "200",
                "size": "2326",
                "referer": "http://www.example.com/start.html",
                "agent": "Mozilla/4.08 [en] (Win98; I ;Nav)",
            },
        ),
        (
            EventTime(seconds=1714564805, nanoseconds=0),
            {
                "host": "10.0.0.7",
                "user": "-",
                "method": "POST",
                "path": "/api/v1/items?id=42",
                "code": "201",
                "size": "-",
            },
        ),
        (
            EventTime(seconds=1714557605, nanoseconds=0),
            {
                "host": "10.0.0.8",
                "user": "-",
                "method": "GET",
                "path": "/café/\udcff\udcfe",
                "code": "404",
                "size": "153",
                "referer": "-",
                "agent": "curl/8.0 ✓",
            },
        ),
        (
            EventTime(seconds=1704067200, nanoseconds=0),
            {
                "host": "10.0.0.9",
                "user": "-",
                "method": "-",
                "code": "400",
                "size": "0",
                "referer": "-",
                "agent": "-",
            },
        ),
        None,
        (
            None,
            {
                "host": "10.0.0.9",
                "user": "-",
                "time": "99/Foo/2023:23:59:59 +0000",
                "method": "GET",
                "path": "/",
                "code": "200",
                "size": "1",
                "referer": "-",
                "agent": "-",
            },
        ),
    ],
    "nginx": [
        (
            EventTime(seconds=1714564805, nanoseconds=0),
            {
                "remote": "172.17.0.1",
                "host": "-",
                "user": "-",
                "method": "GET",
                "path": "/index.html",
                "code": "200",
                "size": "612",
                "referer": "-",
                "agent": "Wget",
            },
        ),
        None,
        None,
    ],
    "k8s-nginx-ingress": [
        (
            EventTime(seconds=1714564805, nanoseconds=0),
            {
                "host": "10.0.0.1",
                "user": "-",
                "method": "GET",
                "path": "/healthz",
                "code": "200",
                "size": "2",
                "referer": "-",
                "agent": "kube-probe/1.29",
                "request_length": "120",
                "request_time": "0.001",
                "proxy_upstream_name": "default-svc-80",
                "upstream_addr": "10.1.2.3:8080",
                "upstream_response_length": "2",
                "upstream_response_time": "0.001",
                "upstream_status": "200",
                "reg_id": "7f3c2a",
            },
        ),
        (
            EventTime(seconds=1714564805, nanoseconds=0),
            {
                "host": "10.0.0.1",
                "user": "bob",
                "method": "POST",
                "path": "/api",
                "code": "201",
                "size": "9",
                "referer": "-",
                "agent": "curl",
                "request_length": "300",
                "request_time": "0.120",
                "proxy_upstream_name": "default-api-80",
                "upstream_addr": "10.1.2.4:8080",
                "upstream_response_length": "9",
                "upstream_response_time": "0.119",
                "upstream_status": "201",
                "reg_id": "9e1d",
            },
        ),
    ],
    "envoy": [
        (
            EventTime(seconds=1714564805, nanoseconds=123000000),
            {
                "start_time": "2024-05-01T12:00:05.123Z",
                "method": "GET",
                "path": "/status/418",
                "protocol": "HTTP/1.1",
                "code": "418",
                "response_flags": "-",
                "bytes_received": "0",
                "bytes_sent": "135",
                "duration": "5",
                "x_envoy_upstream_service_time": "2",
                "x_forwarded_for": "10.0.0.1",
                "user_agent": "curl/8.0",
                "request_id": "e6a7b4f6-1f2b-4c8e-9d6a-2f1b7c9e0a11",
                "authority": "example.com",
                "upstream_host": "10.1.2.3:80",
            },
        )
    ],
    "istio-envoy-proxy": [
        (
            EventTime(seconds=1714564805, nanoseconds=123000000),
            {
                "start_time": "2024-05-01T12:00:05.123Z",
                "method": "GET",
                "path": "/productpage",
                "protocol": "HTTP/1.1",
                "response_code": "200",
                "response_flags": "-",
                "response_code_details": "via_upstream",
                "connection_termination_details": "-",
                "upstream_transport_failure_reason": "-",
                "bytes_received": "0",
                "bytes_sent": "5183",
                "duration": "31",
                "x_envoy_upstream_service_time": "30",
                "x_forwarded_for": "10.0.0.1",
                "user_agent": "curl/8.0",
                "x_request_id": "e6a7b4f6",
                "authority": "productpage:9080",
                "upstream_host": "10.1.2.3:9080",
                "upstream_cluster": "outbound|9080||productpage.default.svc.cluster.local",
                "upstream_local_address": "10.1.2.9:41234",
                "downstream_local_address": "10.96.0.5:9080",
                "downstream_remote_address": "10.1.2.9:41230",
                "requested_server_name": "-",
                "route_name": "default",
            },
        )
    ],
    "kube-custom": [
        (
            None,
            {
                "tag": "kube",
                "pod_name": "var.log.containers.web-7d9f8c6b5-x2x9z",
                "namespace_name": "default",
                "container_name": "nginx",
                "docker_id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            },
        )
    ],
    "kmsg-netfilter-log": [
        (
            EventTime(seconds=1714564805, nanoseconds=123456000),
            {
                "pri": "4",
                "host": "host1",
                "logprefix": "DROP",
                "in": "eth0",
                "macsrc": "00:11:22:33:44:55",
                "macdst": "66:77:88:99:aa:bb",
                "ethtype": "08:00",
                "saddr": "10.0.0.1",
                "daddr": "10.0.0.2",
                "len": "60",
                "tos": "0x00",
                "prec": "0x00",
                "ttl": "64",
                "id": "54321",
                "proto": "TCP",
                "sport": "41234",
                "dport": "22",
                "window": "29200",
                "res": "0x00",
                "flag": "SYN",
                "urgp": "0",
            },
        )
    ],
    "apache_error": [
        (
            None,
            {
                "time": "Oct 11 14:32:52.123456 2023",
                "level": "core:error",
                "pid": "1234",
                "client": "10.0.0.1:5555",
                "message": "AH00037: Symbolic link not allowed",
            },
        ),
        (
            None,
            {
                "time": "Oct 11 14:32:52 2023",
                "level": "notice",
                "message": "Apache/2.4 configured -- resuming normal operations",
            },
        ),
    ],
    "syslog-rfc5424": [
        (
            EventTime(seconds=1065910455, nanoseconds=3000000),
            {
                "pri": "165",
                "time": "2003-10-11T22:14:15.003Z",
                "host": "mymachine.example.com",
                "ident": "evntslog",
                "pid": "-",
                "msgid": "ID47",
                "extradata": '[exampleSDID@32473 iut="3" eventSource="Application"]',
                "message": "An application event",
            },
        ),
        (
            EventTime(seconds=1061727255, nanoseconds=3000),
            {
                "pri": "34",
                "time": "2003-08-24T05:14:15.000003-07:00",
                "host": "192.0.2.1",
                "ident": "myproc",
                "pid": "8710",
                "msgid": "-",
                "extradata": "-",
                "message": "%% It's time to make the do-nuts.",
            },
        ),
        (
            None,
            {
                "pri": "34",
                "time": "bad-time",
                "host": "host",
                "ident": "app",
                "pid": "1",
                "msgid": "-",
                "extradata": "-",
                "message": "msg",
            },
        ),
    ],
    "syslog-rfc3164": [
        (
            yearless(10, 11, 22, 14, 15, 0),
            {
                "pri": "34",
                "time": "Oct 11 22:14:15",
                "host": "mymachine",
                "ident": "su",
                "message": "'su root' failed for lonvick on /dev/pts/8",
            },
        ),
        (
            yearless(2, 5, 17, 32, 18, 0),
            {
                "pri": "13",
                "time": "Feb  5 17:32:18",
                "host": "10.0.0.99",
                "ident": "myapp",
                "pid": "2231",
                "message": "Use the BFG!",
            },
        ),
    ],
    "syslog-rfc3164-local": [
        (
            yearless(2, 5, 17, 32, 18, 0),
            {
                "pri": "13",
                "time": "Feb  5 17:32:18",
                "ident": "myapp",
                "pid": "2231",
                "message": "local message",
            },
        )
    ],
    "mongodb": [
        (
            EventTime(seconds=1714564800, nanoseconds=123000000),
            {
                "time": "2024-05-01T12:00:00.123+0000",
                "severity": "I",
                "component": "NETWORK",
                "context": "conn12",
                "message": "end connection 127.0.0.1:5555 (3 connections now open)",
                "ms": "12",
            },
        )
    ],
    "docker-daemon": [
        (
            EventTime(seconds=1714564800, nanoseconds=123456789),
            {
                "time": "2024-05-01T12:00:00.123456789Z",
                "level": "info",
                "msg": "Loading containers: start.",
            },
        )
    ],
    "docker": [
        (
            EventTime(seconds=1714564800, nanoseconds=123456789),
            {"log": "hello é\n", "stream": "stdout", "time": "2024-05-01T12:00:00.123456789Z"},
        ),
        (
            EventTime(seconds=1714564801, nanoseconds=500000000),
            {
                "log": "escaped \\n and \\t and \\u0041\n",
                "stream": "stderr",
                "time": "2024-05-01T12:00:01.5Z",
            },
        ),
        (None, {"log": "no time"}),
    ],
    "cri": [
        (
            EventTime(seconds=1714564800, nanoseconds=123456789),
            {
                "time": "2024-05-01T12:00:00.123456789Z",
                "stream": "stdout",
                "logtag": "F",
                "message": "a full line",
            },
        ),
        (
            EventTime(seconds=1714557600, nanoseconds=123456789),
            {
                "time": "2024-05-01T12:00:00.123456789+02:00",
                "stream": "stderr",
                "logtag": "P",
                "message": "a partial line ",
            },
        ),
        (
            None,
            {
                "time": "2024-05-01T12:00:00Z",
                "stream": "stdout",
                "logtag": "F",
                "message": "no fraction",
            },
        ),
        None,
    ],
    "logfmt": [
        (
            None,
            {
                "level": "info",
                "msg": 'hello "world"',
                "took": "12ms",
                "bare": True,
                "empty": True,
                "quoted_empty": "",
                "café": "\udcff",
            },
        ),
        (None, {"a": "1", "b": "2"}),
        None,
    ],
    "decoders_utf8": [
        (None, {"a": 'café 😀 AA q / "', "b": '{"k":1}', "c": '{"m":2}', "m": 2}),
        (None, {"a": "� � �x 😀 tail\\", "b": "not json\n", "c": "[1]"}),
        (None, {"a": "plain \udcff", "b": '{"k":"v"} ', "c": '{"bad'}),
        (None, {"a": "x", "b": '  {"k":{"deep":[1,2]}}', "c": '  {"m":"n"}', "m": "n"}),
    ],
    "kv": [
        (EventTime(seconds=1714564800, nanoseconds=0), {"n": 42, "name": "x"}),
        (None, {"at": "nope", "n": "x"}),
    ],
    "kv_strict": [(None, {"a": "1", "b": "2"}), None],
    "tsv": [
        (
            EventTime(seconds=1714564805, nanoseconds=0),
            {"host": "10.0.0.1", "status": 200, "size": 77, "req": "GET / HTTP/1.1"},
        ),
        None,
    ],
    "local_regex": [
        (
            EventTime(seconds=1714564800, nanoseconds=0),
            {
                "level": "WARN",
                "pid": 4242,
                "took": 12.5,
                "hex": 255,
                "flag": True,
                "message": "disk almost full",
            },
        ),
        (
            EventTime(seconds=1714564800, nanoseconds=0),
            {
                "level": "INFO",
                "pid": "99999999999999999999999",
                "took": 1.5,
                "hex": "4bf92f3577b34da6a3ce929d0e0e4736",
                "flag": "yes",
                "message": "\udcff\udcfe raw",
            },
        ),
    ],
    "decoders": [
        (
            None,
            {
                "a": '{"x":1,"y":"z"}',
                "b": "line\nbreak",
                "q": "its",
                "rest": {"inner": [1, 2]},
                "x": 1,
                "y": "z",
            },
        ),
        (None, {"a": "notjson", "b": "plain", "q": "q", "rest": "tab\there"}),
        (None, {"a": "[1]", "b": "u00e9", "q": '"dq"', "rest": '{"bad'}),
        (None, {"a": '"dq"', "b": "x", "q": "", "rest": "[1,2]"}),
    ],
}

TAIL = {
    "json": [
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "ts": "2024-05-01T12:00:00.123Z",
                "level": "info",
                "seq": 1,
                "host": "web-01",
                "msg": "request served",
            },
        ),
        (EventTime(seconds=1696971336, nanoseconds=0), {"msg": "clf time"}),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"time": "not a time", "n": -9223372036854775808, "u": 18446744073709551615},
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"big": 1.2345678901234568e29, "neg": -1.8446744073709552e19, "f": 1.5e300, "e": 1e-07},
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"nested": {"a": [1, 2, {"b": None}], "t": True, "f": False}, "empty": {}, "list": []},
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"uni": "café 😀 ✓", "nul": "a\x00b", "esc": 'tab\there\n"q"'},
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"lone": "cut \ufffd", "raw": "\udcff\udcfe bytes"},
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"padded": 1}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "[1,2,3]"}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": '"just a string"'}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": '{"bad": '}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": ""}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"dup": 2}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"time": 1700000000}),
    ],
    "app_json": [
        (
            EventTime(seconds=1714557600, nanoseconds=123456789),
            {"seq": 7, "took": 12.5, "ok": True, "msg": "x"},
        ),
        (
            EventTime(seconds=1714564800, nanoseconds=100000000),
            {"seq": "8", "took": "n/a", "ok": "maybe"},
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"ts": "2024-05-01T12:00:00Z", "msg": "no fraction"},
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"ts": "2024-02-30T12:00:00.000Z", "msg": "bad day"},
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"msg": "no ts"}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"ts": 12345, "msg": "number ts"}),
    ],
    "app_json_keep": [
        (
            EventTime(seconds=1714590000, nanoseconds=500000000),
            {"ts": "2024-05-01T12:00:00.5-07:00", "msg": "kept"},
        ),
        (
            EventTime(seconds=1714590000, nanoseconds=500000000),
            {"ts": "2024-05-01T12:00:00.5-07:00", "msg": "kept again"},
        ),
    ],
    "epoch_json": [
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"m": 1}),
        (EventTime(seconds=1700000001, nanoseconds=1), {"m": 2}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"t": "99999999999.5", "m": 3}),
    ],
    "apache": [
        (
            EventTime(seconds=1696971336, nanoseconds=0),
            {
                "host": "192.168.0.1",
                "user": "frank",
                "method": "GET",
                "path": "/apache_pb.gif",
                "code": "200",
                "size": "2326",
                "referer": "http://www.example.com/start.html",
                "agent": "Mozilla/4.08 [en] (Win98; I ;Nav)",
            },
        ),
        (
            EventTime(seconds=1714564805, nanoseconds=0),
            {
                "host": "10.0.0.7",
                "user": "-",
                "method": "POST",
                "path": "/api/v1/items?id=42",
                "code": "201",
                "size": "-",
            },
        ),
        (
            EventTime(seconds=1714557605, nanoseconds=0),
            {
                "host": "10.0.0.8",
                "user": "-",
                "method": "GET",
                "path": "/café/\udcff\udcfe",
                "code": "404",
                "size": "153",
                "referer": "-",
                "agent": "curl/8.0 ✓",
            },
        ),
        (
            EventTime(seconds=1704067200, nanoseconds=0),
            {
                "host": "10.0.0.9",
                "user": "-",
                "method": "-",
                "code": "400",
                "size": "0",
                "referer": "-",
                "agent": "-",
            },
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "not an access log line"}),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "host": "10.0.0.9",
                "user": "-",
                "time": "99/Foo/2023:23:59:59 +0000",
                "method": "GET",
                "path": "/",
                "code": "200",
                "size": "1",
                "referer": "-",
                "agent": "-",
            },
        ),
    ],
    "apache2": [
        (
            EventTime(seconds=1696971336, nanoseconds=0),
            {
                "host": "192.168.0.1",
                "user": "frank",
                "method": "GET",
                "path": "/apache_pb.gif",
                "code": "200",
                "size": "2326",
                "referer": "http://www.example.com/start.html",
                "agent": "Mozilla/4.08 [en] (Win98; I ;Nav)",
            },
        ),
        (
            EventTime(seconds=1714564805, nanoseconds=0),
            {
                "host": "10.0.0.7",
                "user": "-",
                "method": "POST",
                "path": "/api/v1/items?id=42",
                "code": "201",
                "size": "-",
            },
        ),
        (
            EventTime(seconds=1714557605, nanoseconds=0),
            {
                "host": "10.0.0.8",
                "user": "-",
                "method": "GET",
                "path": "/café/\udcff\udcfe",
                "code": "404",
                "size": "153",
                "referer": "-",
                "agent": "curl/8.0 ✓",
            },
        ),
        (
            EventTime(seconds=1704067200, nanoseconds=0),
            {
                "host": "10.0.0.9",
                "user": "-",
                "method": "-",
                "code": "400",
                "size": "0",
                "referer": "-",
                "agent": "-",
            },
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "not an access log line"}),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "host": "10.0.0.9",
                "user": "-",
                "time": "99/Foo/2023:23:59:59 +0000",
                "method": "GET",
                "path": "/",
                "code": "200",
                "size": "1",
                "referer": "-",
                "agent": "-",
            },
        ),
    ],
    "nginx": [
        (
            EventTime(seconds=1714564805, nanoseconds=0),
            {
                "remote": "172.17.0.1",
                "host": "-",
                "user": "-",
                "method": "GET",
                "path": "/index.html",
                "code": "200",
                "size": "612",
                "referer": "-",
                "agent": "Wget",
            },
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "log": '172.17.0.1 example.com bob [01/May/2024:12:00:05 +0530] "PUT /x y HTTP/1.1" '
                "204 0"
            },
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "garbage"}),
    ],
    "k8s-nginx-ingress": [
        (
            EventTime(seconds=1714564805, nanoseconds=0),
            {
                "host": "10.0.0.1",
                "user": "-",
                "method": "GET",
                "path": "/healthz",
                "code": "200",
                "size": "2",
                "referer": "-",
                "agent": "kube-probe/1.29",
                "request_length": "120",
                "request_time": "0.001",
                "proxy_upstream_name": "default-svc-80",
                "upstream_addr": "10.1.2.3:8080",
                "upstream_response_length": "2",
                "upstream_response_time": "0.001",
                "upstream_status": "200",
                "reg_id": "7f3c2a",
            },
        ),
        (
            EventTime(seconds=1714564805, nanoseconds=0),
            {
                "host": "10.0.0.1",
                "user": "bob",
                "method": "POST",
                "path": "/api",
                "code": "201",
                "size": "9",
                "referer": "-",
                "agent": "curl",
                "request_length": "300",
                "request_time": "0.120",
                "proxy_upstream_name": "default-api-80",
                "upstream_addr": "10.1.2.4:8080",
                "upstream_response_length": "9",
                "upstream_response_time": "0.119",
                "upstream_status": "201",
                "reg_id": "9e1d",
            },
        ),
    ],
    "envoy": [
        (
            EventTime(seconds=1714564805, nanoseconds=123000000),
            {
                "start_time": "2024-05-01T12:00:05.123Z",
                "method": "GET",
                "path": "/status/418",
                "protocol": "HTTP/1.1",
                "code": "418",
                "response_flags": "-",
                "bytes_received": "0",
                "bytes_sent": "135",
                "duration": "5",
                "x_envoy_upstream_service_time": "2",
                "x_forwarded_for": "10.0.0.1",
                "user_agent": "curl/8.0",
                "request_id": "e6a7b4f6-1f2b-4c8e-9d6a-2f1b7c9e0a11",
                "authority": "example.com",
                "upstream_host": "10.1.2.3:80",
            },
        )
    ],
    "istio-envoy-proxy": [
        (
            EventTime(seconds=1714564805, nanoseconds=123000000),
            {
                "start_time": "2024-05-01T12:00:05.123Z",
                "method": "GET",
                "path": "/productpage",
                "protocol": "HTTP/1.1",
                "response_code": "200",
                "response_flags": "-",
                "response_code_details": "via_upstream",
                "connection_termination_details": "-",
                "upstream_transport_failure_reason": "-",
                "bytes_received": "0",
                "bytes_sent": "5183",
                "duration": "31",
                "x_envoy_upstream_service_time": "30",
                "x_forwarded_for": "10.0.0.1",
                "user_agent": "curl/8.0",
                "x_request_id": "e6a7b4f6",
                "authority": "productpage:9080",
                "upstream_host": "10.1.2.3:9080",
                "upstream_cluster": "outbound|9080||productpage.default.svc.cluster.local",
                "upstream_local_address": "10.1.2.9:41234",
                "downstream_local_address": "10.96.0.5:9080",
                "downstream_remote_address": "10.1.2.9:41230",
                "requested_server_name": "-",
                "route_name": "default",
            },
        )
    ],
    "kube-custom": [
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "tag": "kube",
                "pod_name": "var.log.containers.web-7d9f8c6b5-x2x9z",
                "namespace_name": "default",
                "container_name": "nginx",
                "docker_id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            },
        )
    ],
    "kmsg-netfilter-log": [
        (
            EventTime(seconds=1714564805, nanoseconds=123456000),
            {
                "pri": "4",
                "host": "host1",
                "logprefix": "DROP",
                "in": "eth0",
                "macsrc": "00:11:22:33:44:55",
                "macdst": "66:77:88:99:aa:bb",
                "ethtype": "08:00",
                "saddr": "10.0.0.1",
                "daddr": "10.0.0.2",
                "len": "60",
                "tos": "0x00",
                "prec": "0x00",
                "ttl": "64",
                "id": "54321",
                "proto": "TCP",
                "sport": "41234",
                "dport": "22",
                "window": "29200",
                "res": "0x00",
                "flag": "SYN",
                "urgp": "0",
            },
        )
    ],
    "apache_error": [
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "time": "Oct 11 14:32:52.123456 2023",
                "level": "core:error",
                "pid": "1234",
                "client": "10.0.0.1:5555",
                "message": "AH00037: Symbolic link not allowed",
            },
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "time": "Oct 11 14:32:52 2023",
                "level": "notice",
                "message": "Apache/2.4 configured -- resuming normal operations",
            },
        ),
    ],
    "syslog-rfc5424": [
        (
            EventTime(seconds=1065910455, nanoseconds=3000000),
            {
                "pri": "165",
                "time": "2003-10-11T22:14:15.003Z",
                "host": "mymachine.example.com",
                "ident": "evntslog",
                "pid": "-",
                "msgid": "ID47",
                "extradata": '[exampleSDID@32473 iut="3" eventSource="Application"]',
                "message": "An application event",
            },
        ),
        (
            EventTime(seconds=1061727255, nanoseconds=3000),
            {
                "pri": "34",
                "time": "2003-08-24T05:14:15.000003-07:00",
                "host": "192.0.2.1",
                "ident": "myproc",
                "pid": "8710",
                "msgid": "-",
                "extradata": "-",
                "message": "%% It's time to make the do-nuts.",
            },
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "pri": "34",
                "time": "bad-time",
                "host": "host",
                "ident": "app",
                "pid": "1",
                "msgid": "-",
                "extradata": "-",
                "message": "msg",
            },
        ),
    ],
    "syslog-rfc3164": [
        (
            yearless(10, 11, 22, 14, 15, 0),
            {
                "pri": "34",
                "time": "Oct 11 22:14:15",
                "host": "mymachine",
                "ident": "su",
                "message": "'su root' failed for lonvick on /dev/pts/8",
            },
        ),
        (
            yearless(2, 5, 17, 32, 18, 0),
            {
                "pri": "13",
                "time": "Feb  5 17:32:18",
                "host": "10.0.0.99",
                "ident": "myapp",
                "pid": "2231",
                "message": "Use the BFG!",
            },
        ),
    ],
    "syslog-rfc3164-local": [
        (
            yearless(2, 5, 17, 32, 18, 0),
            {
                "pri": "13",
                "time": "Feb  5 17:32:18",
                "ident": "myapp",
                "pid": "2231",
                "message": "local message",
            },
        )
    ],
    "mongodb": [
        (
            EventTime(seconds=1714564800, nanoseconds=123000000),
            {
                "time": "2024-05-01T12:00:00.123+0000",
                "severity": "I",
                "component": "NETWORK",
                "context": "conn12",
                "message": "end connection 127.0.0.1:5555 (3 connections now open)",
                "ms": "12",
            },
        )
    ],
    "docker-daemon": [
        (
            EventTime(seconds=1714564800, nanoseconds=123456789),
            {
                "time": "2024-05-01T12:00:00.123456789Z",
                "level": "info",
                "msg": "Loading containers: start.",
            },
        )
    ],
    "docker": [
        (
            EventTime(seconds=1714564800, nanoseconds=123456789),
            {"log": "hello é\n", "stream": "stdout", "time": "2024-05-01T12:00:00.123456789Z"},
        ),
        (
            EventTime(seconds=1714564801, nanoseconds=500000000),
            {
                "log": "escaped \\n and \\t and \\u0041\n",
                "stream": "stderr",
                "time": "2024-05-01T12:00:01.5Z",
            },
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "no time"}),
    ],
    "cri": [
        (
            EventTime(seconds=1714564800, nanoseconds=123456789),
            {
                "time": "2024-05-01T12:00:00.123456789Z",
                "stream": "stdout",
                "logtag": "F",
                "message": "a full line",
            },
        ),
        (
            EventTime(seconds=1714557600, nanoseconds=123456789),
            {
                "time": "2024-05-01T12:00:00.123456789+02:00",
                "stream": "stderr",
                "logtag": "P",
                "message": "a partial line ",
            },
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "time": "2024-05-01T12:00:00Z",
                "stream": "stdout",
                "logtag": "F",
                "message": "no fraction",
            },
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "not cri"}),
    ],
    "logfmt": [
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "level": "info",
                "msg": 'hello "world"',
                "took": "12ms",
                "bare": True,
                "empty": True,
                "quoted_empty": "",
                "café": "\udcff",
            },
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"a": "1", "b": "2"}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"c": "3"}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": ""}),
    ],
    "decoders_utf8": [
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"a": 'café 😀 AA q / "', "b": '{"k":1}', "c": '{"m":2}', "m": 2},
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"a": "� � �x 😀 tail\\", "b": "not json\n", "c": "[1]"},
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"a": "plain \udcff", "b": '{"k":"v"} ', "c": '{"bad'},
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"a": "x", "b": '  {"k":{"deep":[1,2]}}', "c": '  {"m":"n"}', "m": "n"},
        ),
    ],
    "kv": [
        (EventTime(seconds=1714564800, nanoseconds=0), {"n": 42, "name": "x"}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"at": "nope", "n": "x"}),
    ],
    "kv_strict": [
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"a": "1", "b": "2"}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "a=1 bare"}),
    ],
    "tsv": [
        (
            EventTime(seconds=1714564805, nanoseconds=0),
            {"host": "10.0.0.1", "status": 200, "size": 77, "req": "GET / HTTP/1.1"},
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "no labels here"}),
    ],
    "local_regex": [
        (
            EventTime(seconds=1714564800, nanoseconds=0),
            {
                "level": "WARN",
                "pid": 4242,
                "took": 12.5,
                "hex": 255,
                "flag": True,
                "message": "disk almost full",
            },
        ),
        (
            EventTime(seconds=1714564800, nanoseconds=0),
            {
                "level": "INFO",
                "pid": "99999999999999999999999",
                "took": 1.5,
                "hex": "4bf92f3577b34da6a3ce929d0e0e4736",
                "flag": "yes",
                "message": "\udcff\udcfe raw",
            },
        ),
    ],
    "decoders": [
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "a": '{"x":1,"y":"z"}',
                "b": "line\nbreak",
                "q": "its",
                "rest": {"inner": [1, 2]},
                "x": 1,
                "y": "z",
            },
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"a": "notjson", "b": "plain", "q": "q", "rest": "tab\there"},
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"a": "[1]", "b": "u00e9", "q": '"dq"', "rest": '{"bad'},
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"a": '"dq"', "b": "x", "q": "", "rest": "[1,2]"},
        ),
    ],
}

MULTILINE = {
    "cri": [
        (
            EventTime(seconds=1557255470, nanoseconds=904275087),
            {
                "time": "2019-05-07T18:57:50.904275087+00:00",
                "stream": "stdout",
                "_p": "P",
                "log": "1a. some multiline log",
            },
        ),
        (
            EventTime(seconds=1557255473, nanoseconds=904275090),
            {
                "time": "2019-05-07T18:57:53.904275090+00:00",
                "stream": "stderr",
                "_p": "F",
                "log": "another log",
            },
        ),
        (
            EventTime(seconds=1557255474, nanoseconds=100000000),
            {
                "time": "2019-05-07T18:57:54.1Z",
                "stream": "stdout",
                "_p": "P",
                "log": "interleaved ",
            },
        ),
        (
            EventTime(seconds=1557255474, nanoseconds=200000000),
            {"time": "2019-05-07T18:57:54.2Z", "stream": "stderr", "_p": "F", "log": "err line"},
        ),
        (
            EventTime(seconds=1557255474, nanoseconds=300000000),
            {"time": "2019-05-07T18:57:54.3Z", "stream": "stdout", "_p": "F", "log": "out end"},
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "not a cri line"}),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "time": "2019-05-07T18:57:55Z",
                "stream": "stdout",
                "_p": "F",
                "log": "café \udcff raw",
            },
        ),
        (
            EventTime(seconds=1557255476, nanoseconds=1),
            {"time": "2019-05-07T18:57:56.000000001Z", "stream": "stdout", "_p": "F", "log": ""},
        ),
    ],
    "docker": [
        (
            EventTime(seconds=1612143603, nanoseconds=534130000),
            {"log": "one, two, three\n", "stream": "stdout", "time": "2021-02-01T01:40:03.53413Z"},
        ),
        (
            EventTime(seconds=1612143604, nanoseconds=0),
            {"log": "single\n", "stream": "stderr", "time": "2021-02-01T01:40:04.0Z"},
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "not json"}),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "log": "big é\n",
                "stream": "stdout",
                "time": "2021-02-01T01:40:05Z",
                "n": 1.2345678901234568e29,
            },
        ),
    ],
    "java": [
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "log": 'Dec 14 06:41:08 Exception in thread "main" java.lang.RuntimeException: wrong!\n'
                "    at com.myproject.module.MyProject.badMethod(MyProject.java:22)\n"
                "    at com.myproject.module.MyProject.main(MyProject.java:6)\n"
                "Caused by: java.lang.IllegalStateException: bad state\n"
                "    ... 5 more\n"
            },
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "plain line\n"}),
    ],
    "python": [
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "log": "Traceback (most recent call last):\n"
                '  File "/app/main.py", line 5, in <module>\n'
                "    main()\n"
                "ValueError: boom \udcff\n"
            },
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "after\n"}),
    ],
    "go": [
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "log": "panic: my panic\n"
                "\n"
                "goroutine 4 [running]:\n"
                "main.main.func1(0xc420024120)\n"
                "\tfoo.go:6 +0x39\n"
                "created by main.main\n"
                "\tfoo.go:5 +0x58\n"
            },
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "done\n"}),
    ],
    "java, python, go": [
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "hello\n"}),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "log": "Traceback (most recent call last):\n"
                '  File "/app/main.py", line 5, in <module>\n'
                "ValueError: boom\n"
            },
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "between\n"}),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"log": "panic: p\n\ngoroutine 1 [running]:\nmain.main()\n\tx.go:1 +0x1\n"},
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "bye\n"}),
    ],
    "custom_regex": [
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {
                "log": "2024-05-01 12:00:00 Exception: boom\n"
                "    at a.b(C.java:1)\n"
                "    at d.e(F.java:2)\n"
            },
        ),
        (
            EventTime(seconds=1700000000, nanoseconds=250000000),
            {"log": "2024-05-01 12:00:01 next record\n"},
        ),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "orphan\n"}),
    ],
    "custom_endswith": [
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "first,\nsecond,\nthird\n"}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"log": "alone\n"}),
    ],
    "custom_parsed": [
        (
            EventTime(seconds=1714564800, nanoseconds=500000000),
            {"msg": "start of it\n  continued", "seq": 1},
        ),
        (EventTime(seconds=1714564802, nanoseconds=500000000), {"msg": "start again", "seq": 3}),
        (EventTime(seconds=1700000000, nanoseconds=250000000), {"msg": "not json at all"}),
    ],
}

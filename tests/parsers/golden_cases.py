"""Inputs of the golden tests (test_golden.py): parser definitions and real-shaped lines.

Expected outputs live in golden_expected.py (generated once from the code
before the fast paths, reviewed by hand; regenerate only for a bug you name:
``python tests/parsers/golden_expected.py --write``).
"""

from __future__ import annotations

# parser-level cases: (parser name, line bytes)
PARSERS_CONF = r"""
[PARSER]
    Name        app_json
    Format      json
    Time_Key    ts
    Time_Format %Y-%m-%dT%H:%M:%S.%L%z
    Types       seq:string took:float ok:bool

[PARSER]
    Name        app_json_keep
    Format      json
    Time_Key    ts
    Time_Format %Y-%m-%dT%H:%M:%S.%L%z
    Time_Keep   On

[PARSER]
    Name        epoch_json
    Format      json
    Time_Key    t
    Time_Format %s.%L

[PARSER]
    Name        local_regex
    Format      regex
    Regex       ^(?<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \[(?<level>\w+)\] (?<pid>\d+) (?<took>[\d.]+)ms (?<hex>\S+) (?<flag>\S+) (?<message>.*)$
    Time_Key    time
    Time_Format %Y-%m-%d %H:%M:%S
    Time_Offset +0900
    Types       pid:integer took:float hex:hex flag:bool

[PARSER]
    Name        decoders
    Format      regex
    Regex       ^(?<a>\S+) (?<b>\S+) (?<q>'[^']*') (?<rest>.*)$
    Decode_Field       json    a
    Decode_Field_As    escaped b
    Decode_Field_As    mysql_quoted q
    Decode_Field_As    json rest try_next
    Decode_Field_As    escaped rest

[PARSER]
    Name        decoders_utf8
    Format      regex
    Regex       ^(?<a>[^|]*)\|(?<b>[^|]*)\|(?<c>.*)$
    Decode_Field_As    escaped_utf8 a
    Decode_Field       json b do_next
    Decode_Field_As    escaped b
    Decode_Field       json c

[PARSER]
    Name        kv
    Format      logfmt
    Time_Key    at
    Time_Format %Y-%m-%dT%H:%M:%S%z
    Types       n:integer

[PARSER]
    Name        kv_strict
    Format      logfmt
    Logfmt_No_Bare_Keys On

[PARSER]
    Name        tsv
    Format      ltsv
    Time_Key    time
    Time_Format [%d/%b/%Y:%H:%M:%S %z]
    Types       status:integer size:integer
"""

APACHE_LINES = [
    b'192.168.0.1 - frank [10/Oct/2023:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"',
    b'10.0.0.7 - - [01/May/2024:12:00:05 +0000] "POST /api/v1/items?id=42 HTTP/1.1" 201 -',
    b'10.0.0.8 - - [01/May/2024:12:00:05 +0200] "GET /caf\xc3\xa9/\xff\xfe HTTP/1.1" 404 153 "-" "curl/8.0 \xe2\x9c\x93"',
    b'10.0.0.9 - - [31/Dec/2023:23:59:60 +0000] "-" 400 0 "-" "-"',
    b"not an access log line",
    b'10.0.0.9 - - [99/Foo/2023:23:59:59 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
]

CASES = {
    "json": [
        b'{"ts":"2024-05-01T12:00:00.123Z","level":"info","seq":1,"host":"web-01","msg":"request served"}',
        b'{"time":"10/Oct/2023:13:55:36 -0700","msg":"clf time"}',
        b'{"time":"not a time","n":-9223372036854775808,"u":18446744073709551615}',
        b'{"big":123456789012345678901234567890,"neg":-18446744073709551617,"f":1.5e300,"e":1E-7}',
        b'{"nested":{"a":[1,2,{"b":null}],"t":true,"f":false},"empty":{},"list":[]}',
        b'{"uni":"caf\\u00e9 \\ud83d\\ude00 \xe2\x9c\x93","nul":"a\\u0000b","esc":"tab\\there\\n\\"q\\""}',
        b'{"lone":"cut \\ud83d","raw":"\xff\xfe bytes"}',
        b'  {"padded": 1}  ',
        b"[1,2,3]",
        b'"just a string"',
        b'{"bad": ',
        b"",
        b'{"dup":1,"dup":2}',
        b'{"time": 1700000000}',
    ],
    "app_json": [
        b'{"ts":"2024-05-01T12:00:00.123456789+02:00","seq":7,"took":"12.5","ok":"TRUE","msg":"x"}',
        b'{"ts":"2024-05-01T12:00:00.1Z","seq":"8","took":"n/a","ok":"maybe"}',
        b'{"ts":"2024-05-01T12:00:00Z","msg":"no fraction"}',
        b'{"ts":"2024-02-30T12:00:00.000Z","msg":"bad day"}',
        b'{"msg":"no ts"}',
        b'{"ts":12345,"msg":"number ts"}',
    ],
    "app_json_keep": [
        b'{"ts":"2024-05-01T12:00:00.5-07:00","msg":"kept"}',
        b'{"ts":"2024-05-01T12:00:00.5-07:00","msg":"kept again"}',
    ],
    "epoch_json": [
        b'{"t":"1700000000.25","m":1}',
        b'{"t":"1700000001.000000001","m":2}',
        b'{"t":"99999999999.5","m":3}',
    ],
    "apache": APACHE_LINES,
    "apache2": APACHE_LINES,
    "nginx": [
        b'172.17.0.1 - - [01/May/2024:12:00:05 +0000] "GET /index.html HTTP/1.1" 200 612 "-" "Wget"',
        b'172.17.0.1 example.com bob [01/May/2024:12:00:05 +0530] "PUT /x y HTTP/1.1" 204 0',
        b"garbage",
    ],
    "k8s-nginx-ingress": [
        b'10.0.0.1 - - [01/May/2024:12:00:05 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.29" 120 0.001 [default-svc-80] [] 10.1.2.3:8080 2 0.001 200 7f3c2a',
        b'10.0.0.1 - bob [01/May/2024:12:00:05 +0000] "POST /api HTTP/2.0" 201 9 "-" "curl" 300 0.120 [default-api-80] 10.1.2.4:8080 9 0.119 201 9e1d tail',
    ],
    "envoy": [
        b'[2024-05-01T12:00:05.123Z] "GET /status/418 HTTP/1.1" 418 - 0 135 5 2 "10.0.0.1" "curl/8.0" "e6a7b4f6-1f2b-4c8e-9d6a-2f1b7c9e0a11" "example.com" "10.1.2.3:80"',
    ],
    "istio-envoy-proxy": [
        b'[2024-05-01T12:00:05.123Z] "GET /productpage HTTP/1.1" 200 - via_upstream - "-" 0 5183 31 30 "10.0.0.1" "curl/8.0" "e6a7b4f6" "productpage:9080" "10.1.2.3:9080" outbound|9080||productpage.default.svc.cluster.local 10.1.2.9:41234 10.96.0.5:9080 10.1.2.9:41230 - default',
    ],
    "kube-custom": [
        b"kube.var.log.containers.web-7d9f8c6b5-x2x9z_default_nginx-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
    ],
    "kmsg-netfilter-log": [
        b"<4>1 2024-05-01T12:00:05.123456+00:00 host1 kernel - - - [12345.678] DROP IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=10.0.0.1 DST=10.0.0.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54321 DF PROTO=TCP SPT=41234 DPT=22 WINDOW=29200 RES=0x00 SYN URGP=0",
    ],
    "apache_error": [
        b"[Wed Oct 11 14:32:52.123456 2023] [core:error] [pid 1234] [client 10.0.0.1:5555] AH00037: Symbolic link not allowed",
        b"[Wed Oct 11 14:32:52 2023] [notice] Apache/2.4 configured -- resuming normal operations",
    ],
    "syslog-rfc5424": [
        b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event',
        b"<34>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
        b"<34>1 bad-time host app 1 - - msg",
    ],
    "syslog-rfc3164": [
        b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        b"<13>Feb  5 17:32:18 10.0.0.99 myapp[2231]: Use the BFG!",
    ],
    "syslog-rfc3164-local": [
        b"<13>Feb  5 17:32:18 myapp[2231]: local message",
    ],
    "mongodb": [
        b"2024-05-01T12:00:00.123+0000 I NETWORK  [conn12] end connection 127.0.0.1:5555 (3 connections now open) 12ms",
    ],
    "docker-daemon": [
        b'time="2024-05-01T12:00:00.123456789Z" level=info msg="Loading containers: start."',
    ],
    "docker": [
        b'{"log":"hello \\u00e9\\n","stream":"stdout","time":"2024-05-01T12:00:00.123456789Z"}',
        b'{"log":"escaped \\\\n and \\\\t and \\\\u0041\\n","stream":"stderr","time":"2024-05-01T12:00:01.5Z"}',
        b'{"log":"no time"}',
    ],
    "cri": [
        b"2024-05-01T12:00:00.123456789Z stdout F a full line",
        b"2024-05-01T12:00:00.123456789+02:00 stderr P a partial line ",
        b"2024-05-01T12:00:00Z stdout F no fraction",
        b"not cri",
    ],
    "logfmt": [
        b'level=info msg="hello \\"world\\"" took=12ms bare empty= quoted_empty="" caf\xc3\xa9=\xff',
        b"a=1 b=2\nc=3",
        b"",
    ],
    "decoders_utf8": [
        b'caf\\u00e9 \\ud83d\\ude00 \\x41\\101 \\q \\/ \\"|{"k":1}|{"m":2}',
        b"\\u12 \\udc00 \\ud83dx \\U0001F600 tail\\|not json\\n|[1]",
        b'plain \xff|{"k":"v"} |{"bad',
        b'x|  {"k":{"deep":[1,2]}}|  {"m":"n"}',
    ],
    "kv": [
        b"at=2024-05-01T12:00:00+0000 n=42 name=x",
        b"at=nope n=x",
    ],
    "kv_strict": [
        b"a=1 b=2",
        b"a=1 bare",
    ],
    "tsv": [
        b"time:[01/May/2024:12:00:05 +0000]\thost:10.0.0.1\tstatus:200\tsize:77\treq:GET / HTTP/1.1\tbad",
        b"no labels here",
    ],
    "local_regex": [
        b"2024-05-01 21:00:00 [WARN] 4242 12.5ms ff TRUE disk almost full",
        b"2024-05-01 21:00:00 [INFO] 99999999999999999999999 1.5ms 4bf92f3577b34da6a3ce929d0e0e4736 yes \xff\xfe raw",
    ],
    "decoders": [
        b'{"x":1,"y":"z"} line\\nbreak \'its\' {"inner":[1,2]}',
        b"notjson plain 'q' tab\\there",
        b'[1] \\u00e9 \'\\"dq\\"\' {"bad',
        b"\"dq\" x '' [1,2]",
    ],
}

# multiline cases: (multiline.parser value, lines)
MULTILINE_CONF = r"""
[MULTILINE_PARSER]
    name          custom_regex
    type          regex
    flush_timeout 1000
    rule      "start_state"   "/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?<x>.*)/"  "cont"
    rule      "cont"          "/^\s+at\s.*/"                                  "cont"

[MULTILINE_PARSER]
    name          custom_endswith
    type          endswith
    match_string  ,
    negate        on

[MULTILINE_PARSER]
    name          custom_parsed
    type          regex
    parser        app_json
    key_content   msg
    rule      "start_state"   "/^start/"   "cont"
    rule      "cont"          "/^\s/"      "cont"
"""

MULTILINE = {
    "cri": [
        b"2019-05-07T18:57:50.904275087+00:00 stdout P 1a. some ",
        b"2019-05-07T18:57:51.904275088+00:00 stdout P multiline ",
        b"2019-05-07T18:57:52.904275089+00:00 stdout F log",
        b"2019-05-07T18:57:53.904275090+00:00 stderr F another log",
        b"2019-05-07T18:57:54.1Z stdout P interleaved ",
        b"2019-05-07T18:57:54.2Z stderr F err line",
        b"2019-05-07T18:57:54.3Z stdout F out end",
        b"not a cri line",
        b"2019-05-07T18:57:55Z stdout F caf\xc3\xa9 \xff raw",
        b"2019-05-07T18:57:56.000000001Z stdout F ",
    ],
    "docker": [
        b'{"log":"one, ","stream":"stdout","time":"2021-02-01T01:40:03.53413Z"}',
        b'{"log":"two, ","stream":"stdout","time":"2021-02-01T01:40:03.53414Z"}',
        b'{"log":"three\\n","stream":"stdout","time":"2021-02-01T01:40:03.53415Z"}',
        b'{"log":"single\\n","stream":"stderr","time":"2021-02-01T01:40:04.0Z"}',
        b"not json",
        b'{"log":"big \\u00e9\\n","stream":"stdout","time":"2021-02-01T01:40:05Z","n":123456789012345678901234567890}',
    ],
    "java": [
        b'Dec 14 06:41:08 Exception in thread "main" java.lang.RuntimeException: wrong!',
        b"    at com.myproject.module.MyProject.badMethod(MyProject.java:22)",
        b"    at com.myproject.module.MyProject.main(MyProject.java:6)",
        b"Caused by: java.lang.IllegalStateException: bad state",
        b"    ... 5 more",
        b"plain line",
    ],
    "python": [
        b"Traceback (most recent call last):",
        b'  File "/app/main.py", line 5, in <module>',
        b"    main()",
        b"ValueError: boom \xff",
        b"after",
    ],
    "go": [
        b"panic: my panic",
        b"",
        b"goroutine 4 [running]:",
        b"main.main.func1(0xc420024120)",
        b"\tfoo.go:6 +0x39",
        b"created by main.main",
        b"\tfoo.go:5 +0x58",
        b"done",
    ],
    "java, python, go": [
        b"hello",
        b"Traceback (most recent call last):",
        b'  File "/app/main.py", line 5, in <module>',
        b"ValueError: boom",
        b"between",
        b"panic: p",
        b"",
        b"goroutine 1 [running]:",
        b"main.main()",
        b"\tx.go:1 +0x1",
        b"bye",
    ],
    "custom_regex": [
        b"2024-05-01 12:00:00 Exception: boom",
        b"    at a.b(C.java:1)",
        b"    at d.e(F.java:2)",
        b"2024-05-01 12:00:01 next record",
        b"orphan",
    ],
    "custom_endswith": [
        b"first,",
        b"second,",
        b"third",
        b"alone",
    ],
    "custom_parsed": [
        b'{"ts":"2024-05-01T12:00:00.5Z","msg":"start of it","seq":1}',
        b'{"ts":"2024-05-01T12:00:01.5Z","msg":"  continued","seq":2}',
        b'{"ts":"2024-05-01T12:00:02.5Z","msg":"start again","seq":3}',
        b"not json at all",
    ],
}

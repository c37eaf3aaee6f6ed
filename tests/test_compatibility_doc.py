"""docs/compatibility.md's generated tables: every Fluent Bit 5.1.1 flag and key of the
plugins relaybit has, with its status and the test that covers it.

Made from tests/data/fluent_bit_keys.txt (see tests/test_fluent_bit_keys.py) and
relaybit's option tables and command line; this test keeps the document equal
to what they say.  After a change: ``python -m relaybit.reference --update``
(which runs ``python tests/test_compatibility_doc.py --update`` too).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from relaybit.cli import REFUSED_FLAGS, build_parser
from relaybit.plugins import registry
from test_fluent_bit_keys import (
    PENDING,
    expanded,
    fluent_bit_flags,
    fluent_bit_keys,
    lookup,
)

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "compatibility.md"
BLOCKS = {
    "flags": ("<!-- fluent-bit-flags:start -->", "<!-- fluent-bit-flags:end -->"),
    "keys": ("<!-- fluent-bit-keys:start -->", "<!-- fluent-bit-keys:end -->"),
}
KEYS_TEST = "tests/test_fluent_bit_keys.py"
FLAGS_TEST = "tests/test_cli_fluent_bit_flags.py"
CLI_TEST = "tests/test_cli.py"
_FLAGS_TESTED_HERE = {
    "--processor",
    "--storage_path",
    "--dry-run",
    "--log_file",
    "--workdir",
    "--http_listen",
    "--help-json",
    "--sosreport",
    "--supervisor",
}
IMPL_TESTS = {
    "tests/plugins/inputs/test_fluent_bit_keys_inputs.py": {
        ("input", "tail", k)
        for k in (
            "generic.encoding",
            "unicode.encoding",
            "read_newly_discovered_files_from_head",
            "truncate_long_lines",
            "tag_regex",
            "db.compare_filename",
            "ignore_active_older_files",
        )
    }
    | {("input", "tcp", k) for k in ("parser", "tls", "tls.min_version", "tls.crt_file")}
    | {("input", "syslog", k) for k in ("raw_message_key", "format", "tls")}
    | {("input", "forward", k) for k in ("net.io_timeout", "empty_shared_key")},
    "tests/upstream/test_dns.py": {
        ("output", name, f"net.dns.prefer_ipv{v}")
        for name in ("forward", "http", "es")
        for v in "46"
    },
    "tests/upstream/test_tls.py": {
        (kind, name, key)
        for kind, names in (
            ("output", ("forward", "http", "es")),
            ("input", ("forward", "http", "elasticsearch", "syslog")),
        )
        for name in names
        for key in ("tls.min_version", "tls.max_version", "tls.ciphers")
    },
    "tests/plugins/outputs/test_http_output_fluent_bit5.py": {
        ("output", "http", k)
        for k in (
            "proxy",
            "http.response_timeout",
            "http.read_idle_timeout",
            "http_method",
            "body_key",
            "headers_key",
            "oauth2.enable",
            "oauth2.token_url",
            "oauth2.client_id",
            "oauth2.client_secret",
            "oauth2.user_agent",
            "oauth2.scope",
            "oauth2.audience",
            "oauth2.resource",
            "oauth2.auth_method",
            "oauth2.jwt_key_file",
            "oauth2.jwt_cert_file",
            "oauth2.jwt_aud",
            "oauth2.jwt_header",
            "oauth2.jwt_ttl_seconds",
            "oauth2.refresh_skew_seconds",
            "oauth2.timeout",
            "oauth2.connect_timeout",
        )
    }
    | {("output", "es", "http_api_key")},
    "tests/plugins/outputs/test_forward_output.py": {
        ("output", "forward", k) for k in ("add_option", "net.io_timeout")
    },
    "tests/plugins/outputs/test_file.py": {
        ("output", "file", k)
        for k in ("rotate", "rotate_max_size", "rotate_max_files", "rotate_gzip")
    },
}
PLUGIN_TESTS = {
    ("input", "http"): "tests/plugins/inputs/test_http_fluent_bit_keys.py",
    ("input", "elasticsearch"): "tests/plugins/inputs/test_elasticsearch_input.py",
    ("input", "forward"): "tests/plugins/inputs/test_forward_input.py",
    ("filter", "multiline"): "tests/plugins/filters/test_multiline_filter.py",
    ("filter", "parser"): "tests/plugins/filters/test_parser_filter.py",
    ("output", "es"): "tests/plugins/outputs/test_es_output.py",
    ("output", "http"): "tests/plugins/outputs/test_http_output.py",
    ("output", "forward"): "tests/plugins/outputs/test_forward_output.py",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def covering_test(kind: str, plugin: str, key: str) -> str:
    for path, keys in IMPL_TESTS.items():
        if (kind, plugin, key) in keys:
            return path
    if kind == "service":
        return "tests/config, tests/test_agent.py"
    if plugin == "*":
        return "tests/test_agent.py, tests/pipeline"
    path = PLUGIN_TESTS.get((kind, plugin), f"tests/plugins/{kind}s/test_{plugin}.py")
    return path if (REPO / path).exists() else KEYS_TEST


def key_row(kind: str, plugin: str, key: str) -> str:
    opt = lookup(kind, plugin, key)
    if opt is None:
        assert key in PENDING.get((kind, plugin), set()), (kind, plugin, key)
        status, notes, test = "pending", "being implemented for issue 13", KEYS_TEST
    elif opt.refused:
        status, notes, test = "refused unless off", opt.refused, KEYS_TEST
    elif opt.no_effect:
        status, notes, test = "accepted, no effect", opt.no_effect, KEYS_TEST
    else:
        status, notes, test = "implemented", "", covering_test(kind, plugin, key)
    return f"| `{key}` | {status} | {_cell(notes)} | `{test}` |"


def render_keys() -> str:
    header = ["| key | status | notes | test |", "| --- | --- | --- | --- |"]
    sections: list[tuple[str, str, str]] = [("service", "*", "`[SERVICE]`")]
    for kind in ("input", "filter", "output"):
        sections.append((kind, "*", f"Keys every {kind} accepts"))
        sections += [(kind, name, f"{kind} `{name}`") for name in registry.BUILTIN[kind]]  # type: ignore[index]
    rows = fluent_bit_keys()
    out: list[str] = []
    for kind, plugin, title in sections:
        keys = [k for kd, p, k in rows if kd == kind and p == plugin]
        if not keys:
            continue
        probe = registry.BUILTIN[kind] if plugin == "*" and kind != "service" else [plugin]  # type: ignore[index]
        out += [f"### {title}", "", *header]
        out += [key_row(kind, next(iter(probe)), key) for key in keys]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_flags() -> str:
    parser = build_parser()
    helps = {flag: a.help or "" for a in parser._actions for flag in a.option_strings}
    refused = {flag: reason for flags, _d, _t, reason in REFUSED_FLAGS for flag in flags}
    out = ["| flag | status | notes | test |", "| --- | --- | --- | --- |"]
    for short, long in fluent_bit_flags():
        shown = f"`{short}`, `{long}`" if short != "-" else f"`{long}`"
        text = helps[long]
        if long in refused:
            status, notes = "refused", refused[long]
        elif long.startswith("--trace"):
            status, notes = "refused", "relaybit has no chunk trace"
        elif text.startswith("accepted"):
            status, notes = "accepted, no effect", text.split(":", 1)[-1].strip()
        else:
            status, notes = "implemented", text
        test = FLAGS_TEST if long in _FLAGS_TESTED_HERE or status != "implemented" else CLI_TEST
        out.append(f"| {shown} | {status} | {_cell(notes)} | `{test}` |")
    return "\n".join(out) + "\n"


def expected(text: str) -> str:
    for name, render in (("flags", render_flags), ("keys", render_keys)):
        start, end = BLOCKS[name]
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = f"{head}{start}\n{render()}{end}{tail}"
    return text


def test_compatibility_tables_match_fluent_bit_and_relaybit() -> None:
    text = DOC.read_text(encoding="utf-8")
    for start, end in BLOCKS.values():
        assert start in text and end in text, f"{DOC} lost the marker {start}"
    assert text == expected(text), (
        "docs/compatibility.md is stale: run python -m relaybit.reference --update"
        " (or python tests/test_compatibility_doc.py --update)"
    )


def test_every_key_has_a_row() -> None:
    assert len(expanded()) > 500  # the data file is read


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] == ["--update"]:
        before = DOC.read_text(encoding="utf-8")
        after = expected(before)
        if after != before:
            DOC.write_text(after, encoding="utf-8")
            print(f"updated {DOC.relative_to(REPO)}")
    else:
        print(render_flags() + "\n" + render_keys())

"""Extract the keys Fluent Bit declares in its plugins' config maps.

Usage: python scripts/fluent_bit_keys.py /path/to/fluent-bit-source > tests/data/fluent_bit_keys.txt

Reads ``plugins/<kind>_<name>/*.c`` of a Fluent Bit source tree (5.1.1 for the
committed file) for the plugins relaybit has, finds each ``struct
flb_config_map ...[] = { ... };`` array and prints one ``kind plugin key``
line per entry (``FLB_CONFIG_MAP_STR_PREFIX`` keys end in ``*``).  Entries
inside ``#ifdef FLB_SYSTEM_WINDOWS`` / ``_WIN32`` / ``__APPLE__`` blocks are left out
(relaybit runs on Linux like the Linux build of Fluent Bit).  The keys every
input/filter/output accepts outside config maps (``flb_input.c``'s
``prop_key_check`` ...) are printed under the plugin ``*``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

#: relaybit's plugins -> Fluent Bit's plugin folder
PLUGINS = {
    "input": ["dummy", "tail", "stdin", "tcp", "forward", "http", "elasticsearch", "syslog"],
    "filter": [
        "grep",
        "modify",
        "record_modifier",
        "parser",
        "nest",
        "throttle",
        "rewrite_tag",
        "multiline",
    ],
    "output": ["stdout", "null", "counter", "file", "forward", "http", "es"],
}
PREFIX = {"input": "in", "filter": "filter", "output": "out"}
CORE = {"input": "src/flb_input.c", "filter": "src/flb_filter.c", "output": "src/flb_output.c"}
SKIPPED_IFDEFS = ("FLB_SYSTEM_WINDOWS", "_WIN32", "__APPLE__", "FLB_SYSTEM_MACOS")

_ARRAY = re.compile(r"struct\s+flb_config_map\s+\w+\s*\[\]\s*=\s*\{(.*?)\n\};", re.S)
_ENTRY = re.compile(r"\{\s*(FLB_CONFIG_MAP_\w+)\s*,\s*\"([^\"]+)\"")


def _strip_platform_blocks(text: str) -> str:
    """Drop lines inside #if blocks of another platform (nesting followed)."""
    out: list[str] = []
    stack: list[bool] = []  # True: this level is skipped
    for line in text.splitlines():
        s = re.sub(r"^#\s+", "#", line.strip())
        if s.startswith(("#ifdef", "#if ", "#ifndef", "#if(")):
            negative = s.startswith("#ifndef") or "!" in s
            stack.append(not negative and any(d in s for d in SKIPPED_IFDEFS))
            continue
        if s.startswith(("#else", "#elif")) and stack:
            stack[-1] = False
            continue
        if s.startswith("#endif") and stack:
            stack.pop()
            continue
        if any(stack):
            continue
        out.append(line)
    return "\n".join(out)


def plugin_keys(source: Path, kind: str, name: str) -> list[str]:
    folder = source / "plugins" / f"{PREFIX[kind]}_{name}"
    keys: list[str] = []
    for path in sorted(folder.glob("*.c")):
        keys += [k for k in array_keys(path) if k not in keys]
    return keys


def core_keys(source: Path, kind: str) -> list[str]:
    text = _strip_platform_blocks((source / CORE[kind]).read_text(errors="replace"))
    keys: list[str] = array_keys(source / CORE[kind])
    for key in re.findall(r'prop_key_check\("([^"]+)"', text):
        if key not in keys:
            keys.append(key)
    return keys


#: keys a plugin gets from Fluent Bit's core by its flags: (flag, kind, source files)
SHARED = (
    ("FLB_INPUT_NET_SERVER", "input", ("src/flb_downstream.c",)),
    ("FLB_IO_OPT_TLS", "input", ("src/tls/flb_tls.c",)),
    ("FLB_INPUT_HTTP_SERVER", "input", ("src/http_server/flb_http_server_config_map.c",)),
    ("FLB_INPUT_HTTP_SERVER", "input", ("src/flb_oauth2_jwt.c",)),
    ("FLB_OUTPUT_NET", "output", ("src/flb_upstream.c",)),
    ("FLB_IO_OPT_TLS", "output", ("src/tls/flb_tls.c",)),
)
#: oauth2 client keys (src/flb_oauth2.c): Fluent Bit documents them for out_http only
OAUTH2_OUTPUTS = ("http",)


def array_keys(path: Path) -> list[str]:
    text = _strip_platform_blocks(path.read_text(errors="replace"))
    keys: list[str] = []
    for array in _ARRAY.findall(text):
        for typ, key in _ENTRY.findall(array):
            key = key.lower() + ("*" if typ == "FLB_CONFIG_MAP_STR_PREFIX" else "")
            if key not in keys:
                keys.append(key)
    return keys


def plugin_flags(source: Path, kind: str, name: str) -> str:
    folder = source / "plugins" / f"{PREFIX[kind]}_{name}"
    flags = ""
    for path in sorted(folder.glob("*.c")):
        for match in re.finditer(r"\.flags\s*=\s*([^,}]*)", path.read_text(errors="replace")):
            flags += " " + match.group(1)
    return flags


def _is_net_key(key: str) -> bool:
    """Core keys that only network plugins use (listen, host, port, ipv6, tls*)."""
    return key in ("listen", "host", "port", "ipv6") or key == "tls" or key.startswith("tls.")


def service_keys(source: Path) -> list[str]:
    """``[SERVICE]`` keys: ``service_configs[]`` of src/flb_config.c, names from flb_config.h."""
    header = (source / "include/fluent-bit/flb_config.h").read_text(errors="replace")
    names = dict(re.findall(r'#define\s+(FLB_CONF_\w+)\s+\\?\s*"([^"]+)"', header))
    text = _strip_platform_blocks((source / "src/flb_config.c").read_text(errors="replace"))
    body = text[text.index("service_configs[]") :]
    body = body[: body.index("};")]
    keys: list[str] = []
    for macro in re.findall(r"\{\s*(FLB_CONF_\w+)", body):
        key = names[macro].lower()
        if key not in keys:
            keys.append(key)
    return keys


def command_line_flags(source: Path) -> list[tuple[str, str]]:
    """(short or '-', long) of src/fluent-bit.c's long_opts (Windows-only ones left out)."""
    text = _strip_platform_blocks((source / "src/fluent-bit.c").read_text(errors="replace"))
    body = text[text.index("long_opts[] = {") :]
    body = body[: body.index("};")]
    flags = []
    for name, value in re.findall(r'\{\s*"([^"]+)",\s*\w+\s*,\s*NULL,\s*([^}\s]+)\s*\}', body):
        short = f"-{value[1]}" if value.startswith("'") else "-"
        flags.append((short, f"--{name}"))
    return flags


def main(argv: list[str]) -> int:
    source = Path(argv[1])
    print("# Keys Fluent Bit 5.1.1 declares for the plugins relaybit has.")
    print("# Made by: python scripts/fluent_bit_keys.py FLUENT_BIT_5.1.1_SOURCE")
    print("#   plugin keys: the config_map arrays of plugins/<in|filter|out>_<name>/*.c;")
    print("#   + by the plugin's .flags: net.* (flb_downstream.c / flb_upstream.c), tls.* (flb_tls.c),")
    print("#   http_server.* and oauth2.* (flb_http_server_config_map.c, flb_oauth2_jwt.c) for")
    print("#   HTTP server inputs, oauth2.* client keys (flb_oauth2.c) for out_http;")
    print("#   '*' lines: keys of src/flb_input.c / flb_filter.c / flb_output.c (config")
    print("#   maps and prop_key_check), accepted by every plugin of that kind; of these,")
    print("#   listen/host/port/ipv6/tls* are listed only under the network plugins.")
    print("#   Windows/macOS-only entries (#ifdef FLB_SYSTEM_WINDOWS ...) left out.")
    print("#   'service' lines: service_configs[] of src/flb_config.c (names from flb_config.h).")
    print("#   'flag' lines: long_opts[] of src/fluent-bit.c: flag SHORT LONG ('-': no short form).")
    print("# Format: kind plugin key   (a key ending in '*' is a prefix)")
    for short, long in command_line_flags(source):
        print(f"flag {short} {long}")
    for key in service_keys(source):
        print(f"service * {key}")
    for kind, names in PLUGINS.items():
        core = core_keys(source, kind)
        for key in core:
            if not _is_net_key(key):
                print(f"{kind} * {key}")
        for name in names:
            keys = plugin_keys(source, kind, name)
            flags = plugin_flags(source, kind, name)
            if any(f in flags for f in ("FLB_INPUT_NET_SERVER", "FLB_OUTPUT_NET")):
                tls = "FLB_IO_OPT_TLS" in flags
                keys += [
                    k
                    for k in core
                    if _is_net_key(k) and (tls or not k.startswith("tls")) and k not in keys
                ]
            for flag, group_kind, files in SHARED:
                if group_kind == kind and flag in flags:
                    for file in files:
                        keys += [k for k in array_keys(source / file) if k not in keys]
            if kind == "output" and name in OAUTH2_OUTPUTS:
                keys += [k for k in array_keys(source / "src/flb_oauth2.c") if k not in keys]
            for key in keys:
                print(f"{kind} {name} {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

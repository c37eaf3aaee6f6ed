"""The configuration reference, generated from the plugins' option tables.

``python -m relaybit.reference`` prints the Markdown that README.md carries
between the ``<!-- reference:start -->`` and ``<!-- reference:end -->`` markers;
a test keeps the two in step, so the README can never drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from relaybit.config.schema import ConfigMap
from relaybit.plugins import registry
from relaybit.plugins.base import FILTER_COMMON, INPUT_COMMON, OUTPUT_COMMON
from relaybit.upstream.node import NET_OPTIONS, NODE_OPTIONS, UPSTREAM_OPTIONS

START = "<!-- reference:start -->"
END = "<!-- reference:end -->"

_COMMON: dict[registry.Kind, ConfigMap] = {
    "input": INPUT_COMMON,
    "filter": FILTER_COMMON,
    "output": OUTPUT_COMMON,
}


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(cmap: ConfigMap, *, skip: ConfigMap | None = None) -> str:
    """One Markdown table of a ConfigMap (keys in ``skip`` left out)."""
    skipped = set(skip.names()) if skip else set()
    rows = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for opt in cmap.options:
        if opt.name in skipped:
            continue
        default = "" if opt.default is None else str(opt.default)
        if opt.default is True or opt.default is False:
            default = "on" if opt.default else "off"
        notes = []
        if opt.multiple:
            notes.append("repeatable")
        if opt.per_node:
            notes.append("per node")
        if opt.secret:
            notes.append("secret")
        desc = opt.description + (f" ({', '.join(notes)})" if notes else "")
        rows.append(
            f"| `{opt.name}` | {_escape(opt.describe_type())} | {_escape(default)} | {_escape(desc)} |"
        )
    return "\n".join(rows)


def _service_map() -> ConfigMap | None:
    try:
        from relaybit.config.service import SERVICE_OPTIONS
    except ImportError:  # pragma: no cover - during bootstrap only
        return None
    return SERVICE_OPTIONS


def render() -> str:
    """The whole reference as Markdown."""
    out: list[str] = []
    service = _service_map()
    if service is not None:
        out += ["### `[SERVICE]`", "", table(service), ""]
    out += [
        "### Keys every input accepts",
        "",
        table(INPUT_COMMON),
        "",
        "### Keys every filter accepts",
        "",
        table(FILTER_COMMON),
        "",
        "### Keys every output accepts",
        "",
        table(OUTPUT_COMMON),
        "",
        "### `net.*` keys (every network output)",
        "",
        table(NET_OPTIONS),
        "",
        "### Upstream files: `[UPSTREAM]`",
        "",
        table(UPSTREAM_OPTIONS),
        "",
        "### Upstream files: `[NODE]`",
        "",
        "Any other key on a node is a plugin key of the output that uses the upstream "
        "(for example `shared_key` for `forward`); it must be one of that output's keys "
        "marked *per node* below.",
        "",
        table(NODE_OPTIONS),
        "",
    ]
    for kind in ("input", "filter", "output"):
        for name in registry.BUILTIN[kind]:
            try:
                cls = registry.load(kind, name)
            except ImportError:
                continue
            if cls is None:
                continue
            cmap: ConfigMap = getattr(cls, "options", ConfigMap(()))
            desc = getattr(cls, "description", "")
            out += [f"### {kind} `{name}`", ""]
            if desc:
                out += [desc, ""]
            skip = _COMMON[kind] + NET_OPTIONS if kind == "output" else _COMMON[kind]
            out += [table(cmap, skip=skip), ""]
    return "\n".join(out).rstrip() + "\n"


def update_readme(path: Path) -> bool:
    """Rewrite the reference block of ``path``; True when it changed."""
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    new = f"{head}{START}\n{render()}{END}{tail}"
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) > 1 and sys.argv[1] == "--update":
        changed = update_readme(Path(sys.argv[2] if len(sys.argv) > 2 else "README.md"))
        print("README.md updated" if changed else "README.md already current")
    else:
        sys.stdout.write(render())

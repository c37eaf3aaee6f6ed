"""The configuration reference, generated from the plugins' option tables.

``python -m relaybit.reference --update`` rewrites the generated parts of the
documentation site (``docs/``):

- ``docs/reference.md``: the keys every section accepts ([SERVICE], the keys
  common to inputs, filters and outputs, ``net.*``, [UPSTREAM] and [NODE]);
- ``docs/plugins/<kind>/<name>.md``: one page per built-in plugin, its
  description and its key table;
- the plugin pages' entries in ``mkdocs.yml``'s ``nav``.

Each generated block sits between ``<!-- reference:start -->`` and
``<!-- reference:end -->`` (``# reference:start`` / ``# reference:end`` in
mkdocs.yml); text around a block is written by hand and kept. A test
(tests/test_docs.py) keeps every block equal to what this module renders, so
the documentation can never drift from the code. Without ``--update`` it
prints the whole reference as one Markdown document.
"""

from __future__ import annotations

import sys
from pathlib import Path

from relaybit.config.schema import ConfigMap
from relaybit.plugins import registry
from relaybit.plugins.base import FILTER_COMMON, INPUT_COMMON, OUTPUT_COMMON, PROCESSOR_COMMON
from relaybit.upstream.node import NET_OPTIONS, NODE_OPTIONS, UPSTREAM_OPTIONS

START = "<!-- reference:start -->"
END = "<!-- reference:end -->"
NAV_START = "# reference:start"
NAV_END = "# reference:end"

KINDS: tuple[registry.Kind, ...] = ("input", "filter", "output", "processor")
_COMMON: dict[registry.Kind, ConfigMap] = {
    "input": INPUT_COMMON,
    "filter": FILTER_COMMON,
    "output": OUTPUT_COMMON,
    "processor": PROCESSOR_COMMON,
}
_PLURAL = {"input": "inputs", "filter": "filters", "output": "outputs", "processor": "processors"}


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
        desc = opt.described()
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


def render_common() -> str:
    """The keys of [SERVICE], of every input/filter/output, net.*, [UPSTREAM], [NODE]."""
    out: list[str] = []
    service = _service_map()
    if service is not None:
        out += ["## `[SERVICE]`", "", table(service), ""]
    out += [
        "## Keys every input accepts",
        "",
        table(INPUT_COMMON),
        "",
        "## Keys every filter accepts",
        "",
        table(FILTER_COMMON),
        "",
        "## Keys every output accepts",
        "",
        table(OUTPUT_COMMON),
        "",
        "## Keys every processor accepts",
        "",
        "A processor (YAML `processors: logs:` under an input or an output) is "
        "`content_modifier` or any filter, with the filter's keys; see "
        "[processors](processors.md).",
        "",
        table(PROCESSOR_COMMON),
        "",
        "## `net.*` keys (every network output)",
        "",
        table(NET_OPTIONS),
        "",
        "## Upstream files: `[UPSTREAM]`",
        "",
        table(UPSTREAM_OPTIONS),
        "",
        "## Upstream files: `[NODE]`",
        "",
        "Any other key on a node is a plugin key of the output that uses the upstream "
        "(for example `shared_key` for `forward`); it must be one of that output's keys "
        "marked *per node* on its page.",
        "",
        table(NODE_OPTIONS),
    ]
    return "\n".join(out).rstrip() + "\n"


def builtin_plugins() -> list[tuple[registry.Kind, str, type]]:
    """Every built-in plugin that loads here, in registry order."""
    found: list[tuple[registry.Kind, str, type]] = []
    for kind in KINDS:
        for name in registry.BUILTIN[kind]:
            try:
                cls = registry.load(kind, name)
            except ImportError:  # pragma: no cover - an optional dependency missing
                continue
            if cls is not None:
                found.append((kind, name, cls))
    return found


def render_plugin(kind: registry.Kind, cls: type) -> str:
    """A plugin's description and the keys of its own (the common ones are linked)."""
    cmap: ConfigMap = getattr(cls, "options", ConfigMap(()))
    desc = getattr(cls, "description", "")
    skip = _COMMON[kind] + NET_OPTIONS if kind == "output" else _COMMON[kind]
    common = f"[keys every {kind} accepts](../../reference.md#keys-every-{kind}-accepts)"
    if kind == "output" and set(NET_OPTIONS.names()) & set(cmap.names()):  # inputs list theirs
        common += " and the [`net.*` keys](../../reference.md#net-keys-every-network-output)"
    out = [desc if desc.endswith(".") else f"{desc}.", ""] if desc else []
    own = table(cmap, skip=skip)
    if own.count("\n") < 2:
        out += [f"It has no keys of its own besides the {common}."]
    else:
        out += [f"Besides the {common}:", "", own]
    return "\n".join(out).rstrip() + "\n"


def plugin_page(kind: registry.Kind, name: str) -> Path:
    """The page of one plugin, relative to docs/."""
    return Path("plugins") / _PLURAL[kind] / f"{name}.md"


def render_nav() -> str:
    """mkdocs.yml's nav entries of the plugin pages (indented for the Plugins entry)."""
    lines: list[str] = []
    for kind in KINDS:
        lines.append(f"      - {_PLURAL[kind].capitalize()}:")
        for k, name, _cls in builtin_plugins():
            if k == kind:
                lines.append(f"          - {name}: {plugin_page(k, name).as_posix()}")
    # the end marker keeps the indentation of the start marker
    return "\n".join(lines) + "\n      "


def _replace(text: str, start: str, end: str, block: str) -> str:
    head, sep, rest = text.partition(start)
    if not sep:
        raise ValueError(f"no {start!r} marker")
    _, sep, tail = rest.partition(end)
    if not sep:
        raise ValueError(f"no {end!r} marker")
    return f"{head}{start}\n{block}{end}{tail}"


def block(text: str, start: str = START, end: str = END) -> str:
    """The generated block of a page (between the markers)."""
    return text.split(start, 1)[1].split(end, 1)[0].lstrip("\n")


def expected(root: Path) -> dict[Path, tuple[str, str, str]]:
    """Each generated file (under ``root``) -> (start marker, end marker, block)."""
    docs = root / "docs"
    want: dict[Path, tuple[str, str, str]] = {
        docs / "reference.md": (START, END, render_common()),
        root / "mkdocs.yml": (NAV_START, NAV_END, render_nav()),
    }
    for kind, name, cls in builtin_plugins():
        want[docs / plugin_page(kind, name)] = (START, END, render_plugin(kind, cls))
    return want


def update(root: Path) -> list[Path]:
    """Rewrite every generated block under ``root``; the files that changed.

    A plugin page that does not exist yet is created with a title, the
    generated block and nothing else; write notes around the block.
    """
    changed: list[Path] = []
    for path, (start, end, text) in expected(root).items():
        if path.exists():
            old = path.read_text(encoding="utf-8")
        else:
            kind, name = path.parent.name[:-1], path.stem
            old = f"# {kind} `{name}`\n\n{START}\n{END}\n"
            path.parent.mkdir(parents=True, exist_ok=True)
        new = _replace(old, start, end, text)
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def render() -> str:
    """The whole reference as one Markdown document."""
    out = ["# Configuration reference", "", render_common()]
    for kind, name, cls in builtin_plugins():
        out += [f"## {kind} `{name}`", "", render_plugin(kind, cls)]
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) > 1 and sys.argv[1] == "--update":
        root = Path(sys.argv[2] if len(sys.argv) > 2 else ".")
        for path in update(root):
            print(f"updated {path}")
        # docs/compatibility.md's Fluent Bit tables come from the test data (a checkout only)
        compat = root / "tests" / "test_compatibility_doc.py"
        if compat.is_file():
            import subprocess

            subprocess.run([sys.executable, str(compat), "--update"], check=True)
    else:
        sys.stdout.write(render())

"""The ``relaybit`` command: Fluent Bit's flags, ``--dry-run`` and the agent.

``relaybit -c FILE`` runs a configuration; ``-i NAME -p k=v -t TAG -o NAME -m
MATCH`` builds a pipeline on the command line (``-p``, ``-m`` and ``-t`` apply
to the last ``-i``/``-F``/``-o``).  ``--dry-run`` loads and validates everything
and prints the resolved configuration, secrets masked, then Fluent Bit's
"configuration test is successful" on stderr; with ``-q`` it prints nothing
when valid, only the errors when not.  Exit status: 0 when
valid (or the agent's status), 1 on a configuration error.

Every flag of Fluent Bit 5.1.1's src/fluent-bit.c is here, with its short and
long form (``--opt=value`` and ``--opt value``, unique prefixes of long names
as getopt_long): implemented, accepted without effect (said in ``-h``, warned
at start), or refused (:data:`REFUSED_FLAGS`, ``--trace*``, ``-r`` outside
``-h``/``-J``) with a sentence saying why and what to use instead.
docs/compatibility.md lists them.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from relaybit import __version__
from relaybit.config.loader import (
    check_keys,
    full_configmap,
    load_config,
    load_parsers,
    load_plugin,
    load_upstream_file,
    processor_label,
    read_sections,
    resolve_upstreams,
    service_settings,
)
from relaybit.config.model import AgentConfig, PluginInstance, PluginKind
from relaybit.config.origin import COMMAND_LINE
from relaybit.config.schema import ConfigMap, RawProperty
from relaybit.config.secrets import mask
from relaybit.config.service import DAEMON_REFUSED, FIPS_REFUSED, SERVICE_OPTIONS
from relaybit.errors import ConfigError, ConfigErrors
from relaybit.logging import ROOT as LOG_ROOT
from relaybit.logging import FluentBitFormatter
from relaybit.net.limits import raise_nofile_limit
from relaybit.plugins import registry
from relaybit.upstream.node import UpstreamSpec

if TYPE_CHECKING:  # rich loads only where a table is printed
    from rich.console import Console
    from rich.table import Table

#: what ``--dry-run`` writes to stderr when the configuration is valid, after the
#: resolved configuration on stdout: Fluent Bit 5.1.1's line, for scripts that look
#: for it.  With ``-q`` a dry run writes nothing when valid (only the errors when not).
DRY_RUN_OK = "configuration test is successful"

_KINDS: dict[str, PluginKind] = {"-i": "input", "-F": "filter", "-o": "output"}
#: what ``-h`` and ``-J`` describe: ``-r NAME`` too (a processor's keys, as Fluent Bit)
_HELP_KINDS: dict[str, PluginKind] = {**_KINDS, "-r": "processor"}
#: ``-r`` outside ``-h``/``-J``: processors are only set in a YAML configuration
PROCESSOR_REFUSED = (
    "processors are set in a YAML configuration, not on the command line"
    " ('-r NAME -h' prints a processor's keys)"
)

#: Fluent Bit 5.1.1 flags relaybit refuses: (flags, dest, takes a value, why and what instead)
REFUSED_FLAGS: tuple[tuple[tuple[str, ...], str, bool, str], ...] = (
    (("-d", "--daemon"), "daemon", False, DAEMON_REFUSED),
    (
        ("-e", "--plugin"),
        "plugin",
        True,
        "relaybit loads no shared-library plugins; install a Python package that"
        " registers a 'relaybit.plugins' entry point",
    ),
    (("-C", "--custom"), "custom", True, "relaybit has no custom plugins"),
    (("-T", "--sp-task"), "sp_task", True, "relaybit has no stream processor"),
    (
        ("--enable-fips",),
        "enable_fips",
        False,
        FIPS_REFUSED,
    ),
    (("-M", "--windows_maxstdio"), "windows_maxstdio", True, "Windows only"),
)


class _PipelineAction(argparse.Action):
    """Keeps -i/-F/-o/-p/-m/-t in command-line order (they refer to each other)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        items = list(getattr(namespace, "pipeline", None) or [])
        items.append((self.dest, str(values)))
        namespace.pipeline = items


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``-h`` is handled by :func:`main`, to see ``-i NAME -h``)."""
    p = argparse.ArgumentParser(
        prog="relaybit",
        add_help=False,
        description="relaybit: a Fluent Bit compatible log forwarding agent.",
        epilog=(
            "Example: relaybit -c examples/agent.conf --dry-run\n"
            "Live view of a running agent: relaybit top [--url http://127.0.0.1:2020]"
        ),
    )
    p.set_defaults(pipeline=[])
    p.add_argument("-c", "--config", metavar="FILE", help="configuration file (classic or YAML)")
    p.add_argument(
        "-D",
        "--dry-run",
        action="store_true",
        help="load and validate, print the configuration, exit (with -q: only errors)",
    )
    p.add_argument(
        "-b", "--storage_path", metavar="PATH", help="storage path ([SERVICE] storage.path)"
    )
    p.add_argument("-l", "--log_file", metavar="FILE", help="write the log to FILE")
    p.add_argument(
        "-w",
        "--workdir",
        metavar="DIR",
        help="change to DIR first (relative -c, -R and paths are read from there)",
    )
    p.add_argument(
        "-s",
        "--coro_stack_size",
        metavar="BYTES",
        help="accepted, no effect: relaybit has no C coroutines",
    )
    p.add_argument(
        "-Z",
        "--enable-chunk-trace",
        action="store_true",
        help="accepted with a warning: relaybit has no chunk trace (/api/v1/trace answers 501)",
    )
    for flag in ("--trace", "--trace-input", "--trace-output", "--trace-output-property"):
        p.add_argument(
            flag,
            metavar="VALUE",
            action="append",
            dest="trace",
            help="refused: relaybit has no chunk trace",
        )
    p.add_argument(
        "--supervisor",
        action="store_true",
        help="run the agent in a child process, restarted when it fails (SIGHUP restarts it)",
    )
    p.add_argument(
        "-L", "--http_listen", metavar="ADDRESS", help="address of the monitoring HTTP server"
    )
    p.add_argument(
        "-W",
        "--disable-thread-safety-on-hot-reload",
        action="store_true",
        help="accepted, no effect: relaybit reloads on its event loop",
    )
    p.add_argument(
        "-J",
        "--help-json",
        action="store_true",
        help="the option tables as a JSON schema (of the last -i/-F/-o, or of everything)",
    )
    p.add_argument("-S", "--sosreport", action="store_true", help="print a support report and exit")
    for flags, dest, takes, reason in REFUSED_FLAGS:
        p.add_argument(
            *flags,
            dest=dest,
            action="append" if takes else "append_const",
            **({"metavar": "VALUE"} if takes else {"const": True}),
            help=f"refused: {reason}",
        )
    p.add_argument(
        "-i", "--input", dest="i", metavar="NAME", action=_PipelineAction, help="add an input"
    )
    p.add_argument(
        "-F", "--filter", dest="F", metavar="NAME", action=_PipelineAction, help="add a filter"
    )
    p.add_argument(
        "-r",
        "--processor",
        dest="r",
        metavar="NAME",
        action=_PipelineAction,
        help="with -h or -J: a processor's keys; refused otherwise (set processors in YAML)",
    )
    p.add_argument(
        "-o",
        "--output",
        dest="o",
        metavar="NAME",
        action=_PipelineAction,
        help="add an output (NAME://host:port also sets host and port)",
    )
    p.add_argument(
        "-p",
        "--prop",
        dest="p",
        metavar="KEY=VALUE",
        action=_PipelineAction,
        help="set a property of the last -i/-F/-o",
    )
    p.add_argument(
        "-m",
        "--match",
        dest="m",
        metavar="MATCH",
        action=_PipelineAction,
        help="match of the last -F/-o (one -i and one -o: '*' when left out)",
    )
    p.add_argument(
        "-t", "--tag", dest="t", metavar="TAG", action=_PipelineAction, help="tag of the last -i"
    )
    p.add_argument("-f", "--flush", metavar="SECONDS", help="flush interval ([SERVICE] flush)")
    p.add_argument(
        "-R", "--parser", metavar="FILE", action="append", default=[], help="parsers file"
    )
    p.add_argument(
        "-H",
        "--http",
        "--http_server",
        action="store_true",
        help="enable the monitoring HTTP server",
    )
    p.add_argument(
        "-Y",
        "--enable-hot-reload",
        action="store_true",
        help="SIGHUP and PUT /api/v2/reload re-read the configuration ([SERVICE] hot_reload on)",
    )
    p.add_argument(
        "-P", "--port", "--http_port", metavar="PORT", help="port of the monitoring HTTP server"
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logs (-vv: trace)")
    p.add_argument("-q", "--quiet", action="store_true", help="no logs")
    p.add_argument("-V", "--version", action="store_true", help="print the version and exit")
    p.add_argument("-h", "--help", action="store_true", help="this help, or a plugin's options")
    p.add_argument(
        "--demo", action="store_true", help="run the built-in demo (--seconds N: its length)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``relaybit`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["top"]:  # relaybit top [--url URL]: a live view of a running agent
        from relaybit import top

        return top.main(argv[1:])
    if "--demo" in argv:  # the demo parses its own flags (--seconds N)
        demo = importlib.import_module("relaybit.demo")  # owned elsewhere; imported lazily
        return int(demo.main([a for a in argv if a != "--demo"]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    refused = _refused_flags(args)
    if refused:
        for line in refused:
            print(f"relaybit: {line}", file=sys.stderr)
        return 1
    if args.workdir:
        try:
            os.chdir(args.workdir)
        except OSError as exc:
            print(f"relaybit: cannot change to --workdir {args.workdir!r}: {exc}", file=sys.stderr)
            return 1
    if args.version:
        print(f"relaybit v{__version__}")
        return 0
    if args.help:
        return _help(parser, args.pipeline, _console(sys.stdout))
    if args.help_json:
        return _help_json(args.pipeline)
    if any(flag == "r" for flag, _value in args.pipeline):
        print(f"relaybit: -r/--processor is not supported: {PROCESSOR_REFUSED}", file=sys.stderr)
        return 1
    if args.sosreport:
        return _sosreport(args, _console(sys.stdout))
    if args.supervisor:
        from relaybit.supervisor import supervise

        return supervise([a for a in argv if a != "--supervisor"])
    if not args.config and not args.pipeline:
        parser.print_usage(sys.stderr)
        print(
            "relaybit: error: give a configuration (-c FILE) or a pipeline (-i NAME -o NAME)",
            file=sys.stderr,
        )
        return 1
    try:
        if args.dry_run and args.config and not args.pipeline and _is_upstream_file(args.config):
            spec = load_upstream_file(args.config)
            if not args.quiet:
                from rich.markup import escape

                out = _console(sys.stdout)
                out.print(escape(f"relaybit: upstream file OK: {args.config}"))
                out.print(upstream_table(spec))
                print(DRY_RUN_OK, file=sys.stderr)
            return 0
        config = build_config(args)
        if args.dry_run:
            _validate_showing_warnings(config, quiet=args.quiet)
        else:
            check_keys(config)  # the agent builds the plugins before it starts anything
    except ConfigError as exc:
        report_config_error(exc)
        return 1
    if args.dry_run:
        if not args.quiet:
            print_config(config, _console(sys.stdout))
            print(DRY_RUN_OK, file=sys.stderr)
        return 0
    return _run_agent(config, args)


def _refused_flags(args: argparse.Namespace) -> list[str]:
    """A sentence per Fluent Bit flag relaybit refuses: why, and what to use instead."""
    lines = []
    for flags, dest, _takes, reason in REFUSED_FLAGS:
        if getattr(args, dest, None):
            lines.append(f"{'/'.join(flags)} is not supported: {reason}")
    if args.trace:
        lines.append(
            "--trace/--trace-input/--trace-output are not supported: relaybit has no chunk"
            " trace; to see the records a pipeline carries, add an [OUTPUT] stdout with a match"
        )
    return lines


def _help_json(items: Sequence[tuple[str, str]]) -> int:
    """``-J``: the JSON schema of the last -i/-r/-F/-o, or of [SERVICE] and every plugin
    (processors: the processor-only plugins, as Fluent Bit lists them; every filter
    serves as a processor too)."""
    plugins = [
        (_HELP_KINDS[f"-{flag}"], value) for flag, value in items if f"-{flag}" in _HELP_KINDS
    ]
    if plugins:
        kind, value = plugins[-1]
        name = _plugin_url(value)[0]
        try:
            cls = load_plugin(kind, name)
        except ConfigError as exc:
            report_config_error(exc)
            return 1
        schema: dict[str, Any] = {"type": kind, "name": name}
        schema["properties"] = full_configmap(kind, cls).json_schema()
    else:
        schema = {
            "fluent-bit": {"version": __version__, "schema_version": "1", "os": sys.platform},
            "service": SERVICE_OPTIONS.json_schema(),
        }
        for kind in _LISTED_KINDS:
            entries = []
            for name in _listed(kind):
                try:
                    cls = load_plugin(kind, name)
                except ConfigError:
                    continue
                entries.append(
                    {
                        "name": name,
                        "description": str(getattr(cls, "description", "")),
                        "properties": full_configmap(kind, cls).json_schema(),
                    }
                )
            schema[f"{kind}s"] = entries
    print(json.dumps(schema, indent=2))
    return 0


#: the order of Fluent Bit 5.1.1's ``-h`` and ``-J``
_LISTED_KINDS: tuple[PluginKind, ...] = ("input", "processor", "filter", "output")


def _listed(kind: PluginKind) -> list[str]:
    """The plugins ``-h`` and ``-J`` list under ``kind``: for processors only the
    processor-only ones (as Fluent Bit; the filters, listed under their own kind,
    serve as processors too)."""
    names = registry.available(kind)
    if kind == "processor":
        filters = set(registry.available("filter"))
        names = [n for n in names if n not in filters]
    return names


def _sosreport(args: argparse.Namespace, out: Console) -> int:
    """``-S``: what a bug report needs (versions, platform, the configuration, masked)."""
    print(f"relaybit v{__version__}")
    print(f"python {sys.version.split()[0]} ({sys.executable})")
    print(f"platform {platform.platform()}")
    print(f"working directory {os.getcwd()}")
    for kind in ("input", "filter", "output"):
        print(f"{kind}s: {', '.join(registry.available(kind))}")
    if args.config or args.pipeline:
        try:
            config = build_config(args)
            check_keys(config)
        except ConfigError as exc:
            report_config_error(exc, sys.stdout)
            return 0
        print_config(config, out)
    return 0


def report_config_error(exc: ConfigError, stream: TextIO | None = None) -> None:
    """Print ``relaybit: config error: ...`` once per error to stderr."""
    stream = stream or sys.stderr
    errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
    for error in errors:
        print(f"relaybit: config error: {ConfigError.__str__(error)}", file=stream)


def _validate_showing_warnings(config: AgentConfig, *, quiet: bool = False) -> None:
    """:func:`relaybit.validate` (keys, then every plugin built without being started,
    as the agent does before it starts: what only a plugin checks fails the dry run
    too, not only the real start).  Warnings of the build (an output that gets no
    records) go to stderr, unless ``quiet`` (``-q``: only the errors, raised)."""
    handler: logging.Handler
    if quiet:  # a handler that drops them (else logging's last resort prints warnings)
        handler = logging.NullHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(FluentBitFormatter())
        handler.setLevel(logging.WARNING)
    logger = logging.getLogger(LOG_ROOT)
    logger.addHandler(handler)
    try:
        from relaybit.agent import check_config  # the agent loads on demand, as for a run

        check_config(config)
    finally:
        logger.removeHandler(handler)


def _is_upstream_file(path: str) -> bool:
    """True when ``path`` holds only [UPSTREAM]/[NODE] sections (``--dry-run`` of it)."""
    sections = read_sections(path)
    return bool(sections) and all(s.kind in ("upstream", "node") for s in sections)


def _log_level(args: argparse.Namespace) -> str | None:
    if args.quiet:
        return "off"
    if args.verbose:
        return "debug" if args.verbose == 1 else "trace"
    return None


def _run_agent(config: AgentConfig, args: argparse.Namespace) -> int:
    try:
        run = importlib.import_module("relaybit.agent").run
    except ModuleNotFoundError as exc:
        if exc.name != "relaybit.agent":
            raise
        print("relaybit: the agent is not available in this build", file=sys.stderr)
        return 1
    raise_nofile_limit()  # server inputs hold a descriptor per client connection
    extra: dict[str, Any] = {}
    if args.config:  # a hot reload re-reads it; a command-line pipeline cannot be reloaded
        extra["reload_config"] = lambda: _reread(args)
    try:
        return int(
            run(
                config,
                log_level=_log_level(args),
                http_server=True if args.http else None,
                http_port=int(args.port) if args.port else None,
                **extra,
            )
        )
    except ConfigError as exc:
        report_config_error(exc)
        return 1


def _reread(args: argparse.Namespace) -> AgentConfig:
    """The configuration again, for a hot reload: ``-c`` re-read, flags re-applied."""
    config = build_config(args)
    check_keys(config)  # the reloader builds the plugins (and reports what they find)
    return config


# -- building the configuration ------------------------------------------------
def build_config(args: argparse.Namespace) -> AgentConfig:
    """The configuration of ``-c`` plus the command-line pipeline and service flags."""
    config = load_config(args.config) if args.config else AgentConfig(path="<command line>")
    inputs, filters, outputs = command_line_pipeline(args.pipeline)
    outputs = resolve_upstreams(outputs, Path.cwd())
    service = list(config.service)
    for value, key in (
        (args.flush, "flush"),
        (getattr(args, "storage_path", None), "storage.path"),
        (getattr(args, "log_file", None), "log_file"),
        (getattr(args, "coro_stack_size", None), "coro_stack_size"),
        (getattr(args, "http_listen", None), "http_listen"),
        ("on" if getattr(args, "enable_chunk_trace", False) else None, "enable_chunk_trace"),
        (
            "off" if getattr(args, "disable_thread_safety_on_hot_reload", False) else None,
            "hot_reload.ensure_thread_safety",
        ),
    ):
        if value is not None:
            service.append(RawProperty(key, value, COMMAND_LINE))
    if args.http:
        service.append(RawProperty("http_server", "on", COMMAND_LINE))
    if getattr(args, "enable_hot_reload", False):
        service.append(RawProperty("hot_reload", "on", COMMAND_LINE))
    if args.port is not None:
        service.append(RawProperty("http_port", args.port, COMMAND_LINE))
    level = _log_level(args)
    if level is not None:
        service.append(RawProperty("log_level", level, COMMAND_LINE))
    parsers, multiline = list(config.parsers), list(config.multiline_parsers)
    if args.parser:
        more, more_ml = load_parsers(
            [RawProperty("parsers_file", f, COMMAND_LINE) for f in args.parser], Path.cwd()
        )
        parsers += more
        multiline += more_ml
    return dataclasses.replace(
        config,
        service=tuple(service),
        inputs=config.inputs + tuple(inputs),
        filters=config.filters + tuple(filters),
        outputs=config.outputs + tuple(outputs),
        parsers=tuple(parsers),
        multiline_parsers=tuple(multiline),
    )


def command_line_pipeline(
    items: Sequence[tuple[str, str]],
) -> tuple[list[PluginInstance], list[PluginInstance], list[PluginInstance]]:
    """Instances from ``-i/-F/-o`` with their ``-p/-m/-t`` (origin: the command line).

    ``-o forward://host:port`` sets ``host`` and ``port`` as Fluent Bit does.
    """
    built: list[tuple[PluginKind, str, list[RawProperty]]] = []
    for flag, value in items:
        dash = f"-{flag}"
        if dash in _KINDS:
            name, props = _plugin_url(value)
            built.append((_KINDS[dash], name, props))
            continue
        if not built:
            raise ConfigError(f"'{dash} {value}' must follow an -i, -F or -o", COMMAND_LINE)
        kind, name, props = built[-1]
        if dash == "-p":
            key, eq, val = value.partition("=")
            if not eq or not key.strip():
                raise ConfigError(f"expected '-p key=value', got {value!r}", COMMAND_LINE)
            props.append(RawProperty(key.strip().lower(), val.strip(), COMMAND_LINE))
        elif dash == "-m":
            if kind == "input":
                raise ConfigError(f"'-m {value}' applies to a filter or an output", COMMAND_LINE)
            props.append(RawProperty("match", value, COMMAND_LINE))
        elif dash == "-t":
            if kind != "input":
                raise ConfigError(f"'-t {value}' applies to an input", COMMAND_LINE)
            props.append(RawProperty("tag", value, COMMAND_LINE))
    result: dict[PluginKind, list[PluginInstance]] = {"input": [], "filter": [], "output": []}
    for kind, name, props in built:
        result[kind].append(
            PluginInstance(kind=kind, plugin=name, properties=tuple(props), origin=COMMAND_LINE)
        )
    return result["input"], result["filter"], result["output"]


def _plugin_url(value: str) -> tuple[str, list[RawProperty]]:
    name, sep, rest = value.partition("://")
    props: list[RawProperty] = []
    if sep and rest:
        host, colon, port = rest.rstrip("/").rpartition(":")
        if not colon:
            host, port = rest.rstrip("/"), ""
        if host:
            props.append(RawProperty("host", host, COMMAND_LINE))
        if port:
            props.append(RawProperty("port", port, COMMAND_LINE))
    return name.strip().lower(), props


# -- output ----------------------------------------------------------------------
def _console(stream: TextIO) -> Console:
    from rich.console import Console

    tty = stream.isatty()
    return Console(file=stream, width=None if tty else 160, highlight=False, soft_wrap=False)


def print_config(config: AgentConfig, out: Console) -> None:
    """Print the resolved configuration (secrets masked) and each upstream's nodes."""
    from rich.markup import escape
    from rich.table import Table

    out.print(escape(f"relaybit: configuration OK: {config.path}"))
    settings = service_settings(config)
    service = Table(title="[SERVICE]", title_justify="left", show_header=True)
    service.add_column("key")
    service.add_column("value")
    for fld in dataclasses.fields(settings):
        service.add_row(_service_key(fld.name), escape(_display(getattr(settings, fld.name))))
    out.print(service)
    for instance in (*config.inputs, *config.filters, *config.outputs):
        cmap = full_configmap(instance.kind, load_plugin(instance.kind, instance.plugin))
        out.print(_instance_table(instance, cmap))
        if instance.upstream is not None:
            out.print(upstream_table(instance.upstream, cmap))
        for proc in instance.processors:
            pmap = full_configmap("processor", load_plugin("processor", proc.plugin))
            out.print(_instance_table(proc, pmap, title=processor_label(instance, proc)))


def _service_key(field: str) -> str:
    """The [SERVICE] key a settings field comes from (``storage_path`` -> ``storage.path``)."""
    for option in SERVICE_OPTIONS.options:
        flat = option.name.replace(".", "_")
        if field in (flat, flat + "s"):  # parsers_files: every parsers_file
            return option.name
    return field


def _display(value: object) -> str:
    """A resolved value as a Fluent Bit user writes it (on/off, sizes in bytes, lists)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None or value == ():
        return "-"
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _instance_table(instance: PluginInstance, cmap: ConfigMap, title: str = "") -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=escape(title or f"[{instance.kind.upper()}] {instance.plugin}"),
        title_justify="left",
    )
    table.add_column("key")
    table.add_column("value")
    table.add_column("from")
    for prop in instance.properties:
        table.add_row(
            escape(prop.key), escape(mask(prop.key, prop.value, cmap)), escape(str(prop.origin))
        )
    if instance.upstream is not None:
        table.add_row("upstream", escape(instance.upstream.name), escape(instance.upstream.path))
    return table


def upstream_table(spec: UpstreamSpec, cmap: ConfigMap | None = None) -> Table:
    """A table of the nodes of ``spec``: name, address, TLS, verify, plugin keys (masked).

    ``weight`` and ``standby`` columns appear when a node sets them; the caption
    gives the balancing and, when on, the active health checks.
    """
    from rich.markup import escape
    from rich.table import Table

    settings = spec.settings
    caption = f"balance: {settings.balance}"
    if settings.balance == "hash":
        caption += f" on {settings.hash_key}"
    if settings.health_check:
        caption += (
            f"; health_check every {_display(settings.health_check_interval)}s"
            f" (timeout {_display(settings.health_check_timeout)}s)"
        )
    table = Table(
        title=escape(f"upstream '{spec.name}' ({spec.path})"),
        caption=escape(caption),
        title_justify="left",
        caption_justify="left",
    )
    show_weight = any(node.weight != 1 for node in spec.nodes)
    show_standby = any(node.standby for node in spec.nodes)
    columns = ["node", "address", "TLS", "verify"]
    columns += ["weight"] * show_weight + ["standby"] * show_standby + ["plugin keys"]
    for column in columns:
        table.add_column(column)
    for node in spec.nodes:
        keys = " ".join(f"{k}={mask(k, p.value, cmap)}" for k, p in node.extra.items())
        row = [escape(node.name), escape(node.address)]
        row += [_display(node.tls.enabled), _display(node.tls.verify)]
        row += [str(node.weight)] * show_weight + [_display(node.standby)] * show_standby
        table.add_row(*row, escape(keys))
    return table


def _help(parser: argparse.ArgumentParser, items: Sequence[tuple[str, str]], out: Console) -> int:
    from rich.markup import escape
    from rich.table import Table

    plugins = [(f"-{flag}", value) for flag, value in items if f"-{flag}" in _HELP_KINDS]
    if not plugins:
        parser.print_help()
        for kind in _LISTED_KINDS:
            print(f"\n{kind.capitalize()}s:")
            for name in _listed(kind):
                print(f"  {name:<16} {_description(kind, name)}")
            if kind == "processor":
                print("  (every filter below serves as a processor too: -r NAME -h)")
        return 0
    status = 0
    for dash, value in plugins:
        kind = _HELP_KINDS[dash]
        name = _plugin_url(value)[0]
        try:
            cls = load_plugin(kind, name)
        except ConfigError as exc:
            report_config_error(exc)
            status = 1
            continue
        own = getattr(cls, "options", ConfigMap(()))
        table = Table(
            title=f"{kind} plugin '{name}': {getattr(cls, 'description', '')}", title_justify="left"
        )
        for column in ("key", "type", "default", "description"):
            table.add_column(column)
        for opt in own.options:
            description = opt.described()
            default = "" if opt.default is None else _display(opt.default)
            table.add_row(
                *(escape(c) for c in (opt.name, opt.describe_type(), default, description))
            )
        out.print(table)
        common = [o for o in full_configmap(kind, cls).names() if own.get(o) is None]
        out.print(escape(f"Also accepted by every {kind}: {', '.join(common)}"))
    return status


def _description(kind: PluginKind, name: str) -> str:
    try:
        cls = registry.load(kind, name)
    except Exception:  # not importable here; still listed
        return "(not available)"
    return str(getattr(cls, "description", "")) if cls is not None else ""

"""The ``[SERVICE]`` section: its option table and typed settings.

Defaults are Fluent Bit's.  ``SERVICE_OPTIONS.resolve(...)`` validates the raw
keys (unknown keys get a "did you mean"); :meth:`ServiceSettings.from_options`
turns the result into a frozen dataclass the agent uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from relaybit.config.origin import Origin
from relaybit.config.schema import ConfigMap, Option, Options, OptionType, RawProperty

_BOOL: OptionType = "bool"
_STR: OptionType = "str"

#: ``[SERVICE]`` keys that are the default of every network output's ``net.<key>``
SERVICE_DNS_KEYS = ("dns.mode", "dns.resolver", "dns.prefer_ipv4", "dns.prefer_ipv6")

FIPS_REFUSED = (
    "relaybit cannot require OpenSSL's FIPS mode (use a FIPS-enabled Python build and"
    " OpenSSL configuration)"
)

DAEMON_REFUSED = (
    "relaybit does not fork into the background; run it in the foreground under"
    " systemd (Type=simple), a container runtime or 'relaybit --supervisor'"
)

LOG_LEVELS = ("off", "error", "warn", "warning", "info", "debug", "trace")

SERVICE_OPTIONS = ConfigMap(
    (
        Option("flush", "time", 1.0, "Seconds between flushes of buffered records"),
        Option("grace", "time", 5.0, "Seconds to finish pending flushes at shutdown"),
        Option(
            "daemon",
            "bool",
            False,
            "Run in the background",
            refused=DAEMON_REFUSED,
        ),
        Option("log_level", "str", "info", "Log level", choices=LOG_LEVELS),
        Option("log_file", "str", None, "Write the log to this file instead of stderr"),
        Option("parsers_file", "str", None, "File of [PARSER] sections", multiple=True),
        Option(
            "plugins_file",
            "str",
            None,
            "File of shared-library plugins to load",
            no_effect="relaybit plugins are Python packages (entry points relaybit.plugins)",
        ),
        Option("http_server", "bool", False, "Serve the monitoring HTTP API"),
        Option("http_listen", "str", "0.0.0.0", "Address of the monitoring HTTP API"),
        Option("http_port", "port", 2020, "Port of the monitoring HTTP API"),
        Option(
            "health_check",
            "bool",
            False,
            "Also apply hc_errors_count/hc_retry_failure_count to /api/v1/health (always served)",
        ),
        Option("hc_errors_count", "int", 5, "Output errors per period that make it unhealthy"),
        Option("hc_retry_failure_count", "int", 5, "Failed retries per period: unhealthy"),
        Option("hc_period", "time", 60.0, "Health check period in seconds"),
        Option("storage.path", "str", None, "Directory of filesystem storage"),
        Option("storage.sync", "str", "normal", "Filesystem sync mode", choices=("normal", "full")),
        Option(
            "storage.checksum",
            "bool",
            False,
            "CRC32 of chunk data (relaybit always checks every block, on or off)",
        ),
        Option("storage.backlog.mem_limit", "size", 5 * 1024 * 1024, "Memory for backlog chunks"),
        Option("storage.max_chunks_up", "int", 128, "Chunks kept in memory at once", minimum=1),
        Option(
            "storage.mem_limit",
            "size",
            32 * 1024 * 1024,
            "relaybit: bytes memory inputs without mem_buf_limit may buffer together"
            " before they pause (0 = no bound)",
        ),
        Option(
            "storage.metrics",
            "bool",
            False,
            "Storage metrics (/api/v1/storage)",
            no_effect="/api/v1/storage is always served",
        ),
        Option(
            "storage.delete_irrecoverable_chunks",
            "bool",
            False,
            "Delete corrupted chunks found at start",
        ),
        Option("scheduler.base", "int", 5, "Base seconds of the retry backoff", minimum=1),
        Option("scheduler.cap", "int", 2000, "Cap in seconds of the retry backoff", minimum=1),
        Option(
            "encoder.workers",
            "str",
            "auto",
            "Processes that write the es and http outputs' JSON bodies beside the agent"
            " (auto: 1 where the agent may run on 2+ CPUs; 0: in the agent's process). relaybit only",
        ),
        Option(
            "hot_reload",
            "bool",
            False,
            "SIGHUP and PUT /api/v2/reload re-read the whole configuration"
            " (off: SIGHUP re-reads upstream files only)",
        ),
        Option(
            "coro_stack_size",
            "size",
            24576,
            "Coroutine stack size",
            no_effect="relaybit has no C coroutines",
        ),
        Option(
            "enable_chunk_trace",
            "bool",
            False,
            "Fluent Bit's chunk trace (/api/v1/trace, --trace)",
            no_effect="relaybit has no chunk trace: /api/v1/trace answers 501 and"
            " --trace* are refused; use an stdout output with a match to see records",
        ),
        *(
            Option(
                name,
                typ,
                None,
                "Adaptive flush interval",
                no_effect="relaybit flushes every 'flush' seconds",
            )
            for name, typ in (
                ("flush.adaptive", _BOOL),
                ("flush.adaptive.min_interval", _STR),
                ("flush.adaptive.max_interval", _STR),
                ("flush.adaptive.low_pressure", _STR),
                ("flush.adaptive.medium_pressure", _STR),
                ("flush.adaptive.high_pressure", _STR),
                ("flush.adaptive.up_steps", _STR),
                ("flush.adaptive.down_steps", _STR),
            )
        ),
        Option(
            "json.convert_nan_to_null",
            "bool",
            False,
            "NaN as null in JSON",
            no_effect="relaybit's JSON formats follow orjson (NaN is written null)",
        ),
        Option(
            "json.escape_unicode",
            "bool",
            True,
            "Escape non-ASCII characters in JSON",
            no_effect="relaybit writes UTF-8 JSON",
        ),
        Option(
            "security.fips_mode",
            "bool",
            False,
            "Require OpenSSL FIPS mode",
            refused=FIPS_REFUSED,
        ),
        *(
            Option(
                name,
                "str",
                None,
                f"Default of every network output's net.{name}",
            )
            for name in SERVICE_DNS_KEYS
        ),
        Option(
            "storage.backlog.flush_on_shutdown",
            "bool",
            False,
            "Flush backlog chunks at shutdown",
            no_effect="at shutdown relaybit flushes for 'grace' seconds; what is left stays"
            " in the chunk files for the next start",
        ),
        Option(
            "storage.trim_files",
            "bool",
            False,
            "Trim chunk files",
            no_effect="relaybit deletes a chunk file once delivered",
        ),
        Option(
            "storage.type",
            "str",
            None,
            "With storage.inherit on: the storage.type of every input that sets none",
        ),
        Option(
            "storage.inherit",
            "bool",
            False,
            "Inputs without storage.type take [SERVICE] storage.type",
        ),
        Option(
            "storage.keep.rejected",
            "bool",
            False,
            "Keep chunks outputs rejected",
            refused="rejected chunks are dropped and counted; relaybit keeps no dead-letter copies",
        ),
        Option(
            "storage.rejected.path",
            "str",
            None,
            "Folder of rejected chunks",
            refused="relaybit keeps no dead-letter copies (storage.keep.rejected)",
        ),
        Option(
            "storage.rejected.limit",
            "str",
            None,
            "Size of rejected chunks kept",
            refused="relaybit keeps no dead-letter copies (storage.keep.rejected)",
        ),
        Option(
            "multiline_buffer_limit",
            "size",
            None,
            "Bytes a multiline record may hold",
            no_effect="joined records are bounded by the multiline parsers' own limits",
        ),
        Option(
            "streams_file",
            "str",
            None,
            "Stream processor tasks",
            refused="relaybit has no stream processor",
        ),
        Option(
            "sp.convert_from_str_to_num",
            "bool",
            True,
            "Stream processor number conversion",
            no_effect="relaybit has no stream processor",
        ),
        Option(
            "hot_reload.ensure_thread_safety",
            "bool",
            True,
            "Hot reload waits for threads",
            no_effect="relaybit reloads on its event loop",
        ),
        Option(
            "hot_reload.timeout",
            "time",
            None,
            "Hot reload time limit",
            no_effect="the old pipeline drains for 'grace' seconds",
        ),
        Option(
            "http_monitor",
            "bool",
            False,
            "Fluent Bit 0.x's name of http_server",
            no_effect="a legacy key Fluent Bit 5 ignores too; http_server turns the API on",
        ),
    )
)


def resolve_service(
    properties: Iterable[RawProperty],
) -> tuple[Options, list[tuple[str, Origin | None]]]:
    """``[SERVICE]`` options, and a warning per unknown key.

    Fluent Bit ignores ``[SERVICE]`` keys it does not know; relaybit goes on too,
    with a warning that gives the closest known key ("did you mean").  Bad
    values of known keys are still errors (ConfigErrors).
    """
    known: list[RawProperty] = []
    warnings: list[tuple[str, Origin | None]] = []
    for prop in properties:
        if SERVICE_OPTIONS.get(prop.key) is not None:
            known.append(prop)
            continue
        hint = SERVICE_OPTIONS.suggest(prop.key)
        message = f"[SERVICE]: unknown key '{prop.key}' ignored, as Fluent Bit does"
        warnings.append((message + (f"; did you mean '{hint}'?" if hint else ""), prop.origin))
    return SERVICE_OPTIONS.resolve(known, section="[SERVICE]"), warnings


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSettings:
    """Typed ``[SERVICE]`` settings (times in seconds, sizes in bytes)."""

    flush: float = 1.0
    grace: float = 5.0
    daemon: bool = False
    log_level: str = "info"
    log_file: str | None = None
    parsers_files: tuple[str, ...] = ()
    plugins_file: str | None = None
    http_server: bool = False
    http_listen: str = "0.0.0.0"
    http_port: int = 2020
    health_check: bool = False
    hc_errors_count: int = 5
    hc_retry_failure_count: int = 5
    hc_period: float = 60.0
    storage_path: str | None = None
    storage_sync: str = "normal"
    storage_checksum: bool = False
    storage_backlog_mem_limit: int = 5 * 1024 * 1024
    storage_max_chunks_up: int = 128
    storage_mem_limit: int = 32 * 1024 * 1024
    storage_metrics: bool = False
    storage_delete_irrecoverable_chunks: bool = False
    scheduler_base: int = 5
    scheduler_cap: int = 2000
    hot_reload: bool = False
    coro_stack_size: int = 24576

    @classmethod
    def from_options(cls, opts: Options) -> ServiceSettings:
        """Build from ``SERVICE_OPTIONS.resolve(...)``."""
        return cls(
            flush=opts.float("flush"),
            grace=opts.float("grace"),
            daemon=opts.bool("daemon"),
            log_level=opts.str("log_level").lower().replace("warning", "warn"),
            log_file=opts.opt_str("log_file"),
            parsers_files=tuple(str(p) for p in opts.list("parsers_file")),
            plugins_file=opts.opt_str("plugins_file"),
            http_server=opts.bool("http_server"),
            http_listen=opts.str("http_listen"),
            http_port=opts.int("http_port"),
            health_check=opts.bool("health_check"),
            hc_errors_count=opts.int("hc_errors_count"),
            hc_retry_failure_count=opts.int("hc_retry_failure_count"),
            hc_period=opts.float("hc_period"),
            storage_path=opts.opt_str("storage.path"),
            storage_sync=opts.str("storage.sync").lower(),
            storage_checksum=opts.bool("storage.checksum"),
            storage_backlog_mem_limit=opts.int("storage.backlog.mem_limit"),
            storage_max_chunks_up=opts.int("storage.max_chunks_up"),
            storage_mem_limit=opts.int("storage.mem_limit"),
            storage_metrics=opts.bool("storage.metrics"),
            storage_delete_irrecoverable_chunks=opts.bool("storage.delete_irrecoverable_chunks"),
            scheduler_base=opts.int("scheduler.base"),
            scheduler_cap=opts.int("scheduler.cap"),
            hot_reload=opts.bool("hot_reload"),
            coro_stack_size=opts.int("coro_stack_size"),
        )

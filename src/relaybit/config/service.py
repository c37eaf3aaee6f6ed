"""The ``[SERVICE]`` section: its option table and typed settings.

Defaults are Fluent Bit's.  ``SERVICE_OPTIONS.resolve(...)`` validates the raw
keys (unknown keys get a "did you mean"); :meth:`ServiceSettings.from_options`
turns the result into a frozen dataclass the agent uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from relaybit.config.schema import ConfigMap, Option, Options

LOG_LEVELS = ("off", "error", "warn", "warning", "info", "debug", "trace")

SERVICE_OPTIONS = ConfigMap(
    (
        Option("flush", "time", 1.0, "Seconds between flushes of buffered records"),
        Option("grace", "time", 5.0, "Seconds to finish pending flushes at shutdown"),
        Option("daemon", "bool", False, "Accepted for compatibility (relaybit stays in front)"),
        Option("log_level", "str", "info", "Log level", choices=LOG_LEVELS),
        Option("log_file", "str", None, "Write the log to this file instead of stderr"),
        Option("parsers_file", "str", None, "File of [PARSER] sections", multiple=True),
        Option("plugins_file", "str", None, "Accepted for compatibility"),
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
        Option("storage.checksum", "bool", False, "Accepted; chunk blocks are always CRC-checked"),
        Option("storage.backlog.mem_limit", "size", 5 * 1024 * 1024, "Memory for backlog chunks"),
        Option("storage.max_chunks_up", "int", 128, "Chunks kept in memory at once", minimum=1),
        Option(
            "storage.mem_limit",
            "size",
            32 * 1024 * 1024,
            "relaybit: bytes memory inputs without mem_buf_limit may buffer together"
            " before they pause (0 = no bound)",
        ),
        Option("storage.metrics", "bool", False, "Accepted for compatibility (no /api/v1/storage)"),
        Option(
            "storage.delete_irrecoverable_chunks",
            "bool",
            False,
            "Delete corrupted chunks found at start",
        ),
        Option("scheduler.base", "int", 5, "Base seconds of the retry backoff", minimum=1),
        Option("scheduler.cap", "int", 2000, "Cap in seconds of the retry backoff", minimum=1),
        Option(
            "hot_reload",
            "bool",
            False,
            "SIGHUP and PUT /api/v2/reload re-read the whole configuration"
            " (off: SIGHUP re-reads upstream files only)",
        ),
        Option("coro_stack_size", "size", 24576, "Accepted for compatibility"),
    )
)


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

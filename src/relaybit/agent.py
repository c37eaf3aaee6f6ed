"""The agent: a configuration becomes running plugins around one engine.

``run(config)`` is what ``relaybit -c FILE`` calls: it sets up logging, builds
the :class:`Agent`, runs it on uvloop (when installed) until SIGTERM/SIGINT,
and returns the exit code.  A second signal ends the grace period at once.
SIGHUP with ``[SERVICE] hot_reload on`` re-reads the whole configuration and
swaps the pipeline (:mod:`relaybit.reload`); with it off (the default) every
output that has ``reload_upstream()`` re-reads its upstream file.

Build order: ``[SERVICE]`` -> parsers -> filters, outputs, inputs (instance
names ``plugin.N`` counted per plugin, or the ``alias``) -> engine.  Start
order: outputs, engine (storage backlog), inputs, monitoring.  Stop order:
inputs, engine (flush for up to ``grace`` seconds), outputs, monitoring.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import inspect
import logging
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import relaybit
from relaybit.clock import SYSTEM_CLOCK, Clock
from relaybit.config.files import env_file_value
from relaybit.config.loader import (
    check_keys,
    full_configmap,
    inherit_service_defaults,
    load_plugin,
    processor_label,
)
from relaybit.config.model import AgentConfig, PluginInstance
from relaybit.config.schema import Options, suggest
from relaybit.config.service import ServiceSettings, resolve_service
from relaybit.errors import ConfigError, ConfigErrors
from relaybit.logging import counted, plugin_logger, setup_logging
from relaybit.monitoring.events import EventHub
from relaybit.pipeline.engine import (
    DEFAULT_WORKERS_LOCAL,
    DEFAULT_WORKERS_NETWORK,
    Engine,
    EngineSettings,
)
from relaybit.pipeline.router import Matcher
from relaybit.pipeline.scheduler import RetryLimit
from relaybit.plugins.base import (
    FilterPlugin,
    InputContext,
    InputPlugin,
    OutputContext,
    OutputPlugin,
    PluginContext,
)
from relaybit.plugins.outputs.encoder_pool import SERVICE_KEY as ENCODER_WORKERS
from relaybit.plugins.outputs.encoder_pool import EncoderPool, workers_setting
from relaybit.reload import ConfigLoader, HotReloader, ReloadRequest, file_loader
from relaybit.tag import compile_match

log = logging.getLogger("relaybit.agent")

#: Seconds an input gets to stop before the agent moves on.
INPUT_STOP_TIMEOUT = 5.0


class StartupFailed(Exception):
    """A plugin or the monitoring API could not start for an operating-system
    reason (a port in use, a permission): logged as one line, no traceback."""


async def _start_or_explain(what: str, start: Awaitable[Any]) -> Any:
    """Await ``start``; an ``OSError`` becomes :class:`StartupFailed` naming ``what``."""
    try:
        return await start
    except OSError as exc:
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = "; another process listens there: stop it or choose another port"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            hint = "; ports below 1024 need privileges"
        raise StartupFailed(f"{what} could not start: {exc}{hint}") from exc


def default_workers(cls: type, options: Options, upstream: object) -> int:
    """``workers`` when the user left it at 0: the plugin's ``default_workers``
    class attribute, else 2 for network outputs (``host`` or an upstream) and 1
    for local ones (stdout, file: their lines must not interleave)."""
    declared = getattr(cls, "default_workers", None)
    if isinstance(declared, int) and declared > 0:
        return declared
    if upstream is not None or "host" in options:
        return DEFAULT_WORKERS_NETWORK
    return DEFAULT_WORKERS_LOCAL


class Agent:
    """Plugins from an :class:`AgentConfig`, wired to an :class:`Engine`."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        log_level: str | None = None,
        http_server: bool | None = None,
        http_port: int | None = None,
        http_listen: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        reload_config: ConfigLoader | None = None,
    ) -> None:
        """``reload_config`` re-reads the configuration for a hot reload (default:
        ``config.path`` again, when it is a file)."""
        self.config = config
        self.clock = clock
        self.log_level = log_level
        self._http_server = http_server
        self._http_port = http_port
        self._http_listen = http_listen
        self.events = EventHub()
        self.inputs: dict[str, InputPlugin] = {}
        self.filters: dict[str, FilterPlugin] = {}
        self.outputs: dict[str, OutputPlugin] = {}
        self.service: dict[str, Any] = {}
        self.settings = ServiceSettings()
        self.engine = Engine()
        self.monitoring: Any = None
        self.started_at: float | None = None
        self._built = False
        #: what the build found worth saying, logged when the pipeline starts (after
        #: the version banner), or by :func:`check_config`
        self._build_notes: list[tuple[int, str, tuple[Any, ...]]] = []
        self._started_outputs: list[OutputPlugin] = []
        self._started_inputs: list[InputPlugin] = []
        self._stop_requested = asyncio.Event()
        self._exit_watch: asyncio.Task[None] | None = None
        self._env_watch: asyncio.Task[None] | None = None
        self._signals = 0
        self._stopped = False
        self._background: set[asyncio.Future[Any]] = set()
        self.reloader = HotReloader(self, reload_config or file_loader(config.path))

    # -- building -------------------------------------------------------------

    def build(self) -> None:
        """Resolve every section and instantiate every plugin; ConfigErrors lists all problems."""
        if self._built:
            return
        options, unknown = resolve_service(self.config.service)
        for message, origin in unknown:
            self._note(logging.WARNING, "%s%s", f"{origin}: " if origin else "", message)
        self._note_without_effect(options, "[SERVICE]")
        self.settings = ServiceSettings.from_options(options)
        self.service = dict(options)
        self.service["parsers"] = self._parsers()
        self.service["multiline_parsers"] = self.config.multiline_parsers
        self.service["events"] = self.events
        self.service["encoder_pool"] = self._encoder_pool(options)
        self.engine = Engine(
            EngineSettings.from_service(options), clock=self.clock, events=self.events
        )
        config_dir = Path(self.config.path).resolve().parent if self.config.path else Path.cwd()
        errors: list[ConfigError] = []
        counts: dict[tuple[str, str], int] = {}
        config = inherit_service_defaults(self.config)  # storage.inherit, dns.*
        for instance in (*config.filters, *config.outputs, *config.inputs):
            try:
                self._build_instance(instance, config_dir, counts)
            except ConfigErrors as exc:
                errors.extend(_at(e, instance) for e in exc.errors)
            except ConfigError as exc:
                errors.append(_at(exc, instance))
        if errors:
            raise ConfigErrors(errors)
        if not self.inputs:
            self._note(logging.WARNING, "no [INPUT] configured: nothing will be collected")
        if not self.outputs:
            self._note(logging.WARNING, "no [OUTPUT] configured: records have nowhere to go")
        self._built = True

    def _parsers(self) -> dict[str, Any]:
        from relaybit.parsers import build_parsers, with_builtins

        return with_builtins(build_parsers(self.config.parsers))

    def _build_instance(
        self, instance: PluginInstance, config_dir: Path, counts: dict[tuple[str, str], int]
    ) -> None:
        kind, plugin = instance.kind, instance.plugin.lower()
        label = f"[{kind.upper()}] {plugin}"
        cls = load_plugin(kind, plugin, instance.origin)
        opts = full_configmap(kind, cls).resolve(instance.properties, section=label)
        self._note_without_effect(opts, label)
        index = counts.get((kind, plugin), 0)
        counts[(kind, plugin)] = index + 1
        name = opts.opt_str("alias") or f"{plugin}.{index}"
        if name in self._instances(kind):
            raise ConfigError(
                f"instance name '{name}' is used twice", opts.origin("alias"), section=label
            )
        logger = plugin_logger(kind, plugin, name, opts.opt_str("log_level"))
        common: dict[str, Any] = {
            "name": name,
            "plugin": plugin,
            "options": opts,
            "config_dir": config_dir,
            "clock": self.clock,
            "logger": logger,
            "service": self.service,
        }
        processors = self._build_processors(instance, config_dir, name, counts)
        if kind == "input":
            emit = self.engine.add_input(
                name,
                storage_type=opts.str("storage.type").lower() or "memory",
                mem_buf_limit=opts.int("mem_buf_limit"),
                pause_on_chunks_overlimit=opts.bool("storage.pause_on_chunks_overlimit"),
                routes=instance.routes,
                route_outputs=self._route_outputs(instance, label),
                processors=processors,
            )
            ctx = InputContext(
                **common,
                emit=emit,
                tag=opts.opt_str("tag") or name,
                decodes=functools.partial(self.engine.decodes, name),
                emit_entries=functools.partial(self.engine.emit_entries, name),
            )
            self.inputs[name] = cls(ctx)
            return
        matcher: Matcher = self._matcher(opts, label, name)
        if kind == "filter":
            filt = cls(PluginContext(**common))
            self.filters[name] = filt
            self.engine.add_filter(name, filt, matcher)
            return
        try:
            limit = RetryLimit.parse(opts.str("retry_limit"))
        except ValueError as exc:
            raise ConfigError(
                str(exc), opts.origin("retry_limit"), section=label, key="retry_limit"
            ) from None
        workers = opts.int("workers") or default_workers(cls, opts, instance.upstream)
        out = cls(OutputContext(**common, upstream=instance.upstream))
        self.outputs[name] = out
        self.engine.add_output(
            name,
            out,
            matcher,
            retry_limit=limit,
            workers=workers,
            total_limit_size=opts.int("storage.total_limit_size"),
            processors=processors,
        )
        risks = list(out.loss_risks())
        if limit.retries is not None:
            risks.insert(0, f"retry_limit {opts.str('retry_limit')}: a chunk still undelivered")
            risks[0] += f" after {counted(limit.retries, 'retry', 'retries')} is dropped"
        if opts.int("storage.total_limit_size"):
            risks.append("storage.total_limit_size: the oldest queued chunks are dropped above it")
        if risks:  # once per output at start: the choice to allow losses is visible
            self._note(
                logging.WARNING,
                "[output] %s: records can be dropped: %s (relaybit's defaults lose nothing)",
                name,
                "; ".join(risks),
            )

    def _build_processors(
        self,
        owner: PluginInstance,
        config_dir: Path,
        owner_name: str,
        counts: dict[tuple[str, str], int],
    ) -> list[tuple[str, FilterPlugin]]:
        """The processors of an input or output, built in order (YAML ``processors: logs:``).

        They are numbered with the filters of the same plugin (a ``[FILTER]``
        ``rewrite_tag.0`` and a processor ``rewrite_tag.1``), so what a name
        derives from (an emitter's ``emitter_for_<name>``) stays unique."""
        built: list[tuple[str, FilterPlugin]] = []
        errors: list[ConfigError] = []
        for proc in owner.processors:
            label = processor_label(owner, proc)
            try:
                cls = load_plugin("processor", proc.plugin, proc.origin)
                opts = full_configmap("processor", cls).resolve(proc.properties, section=label)
                index = counts.get(("filter", proc.plugin), 0)
                counts[("filter", proc.plugin)] = index + 1
                name = opts.opt_str("alias") or f"{proc.plugin}.{index}"
                logger = plugin_logger(
                    "processor", proc.plugin, f"{owner_name}/{name}", opts.opt_str("log_level")
                )
                ctx = PluginContext(
                    name=name,
                    plugin=proc.plugin,
                    options=opts,
                    config_dir=config_dir,
                    clock=self.clock,
                    logger=logger,
                    service=self.service,
                )
                built.append((name, cls(ctx)))
            except ConfigErrors as exc:
                errors.extend(_at(e, proc) for e in exc.errors)
            except ConfigError as exc:
                errors.append(_at(exc, proc))
        if errors:
            raise ConfigErrors(errors)
        return built

    def _route_outputs(self, instance: PluginInstance, label: str) -> dict[str, tuple[str, ...]]:
        """Each route's output instance names (outputs are built before inputs).

        An output is named by its alias, its instance name (``es.0``) or its
        plugin name, as Fluent Bit finds them; one that does not exist (and has
        no existing ``fallback``) is a ConfigError: Fluent Bit warns and drops
        that route's records.
        """
        resolved: dict[str, tuple[str, ...]] = {}
        for route in instance.routes:
            names: list[str] = []
            for target in route.outputs:
                found = self._find_output(target.name)
                if found is None and target.fallback:
                    found = self._find_output(target.fallback)
                    if found is not None:
                        log.warning(
                            "%s: route '%s': output '%s' not found, using fallback '%s'",
                            label,
                            route.name,
                            target.name,
                            target.fallback,
                        )
                if found is None:
                    hint = suggest(target.name, list(self.outputs))
                    raise ConfigError(
                        f"route '{route.name}' sends to output '{target.name}', which does not"
                        " exist (name an output by its alias, instance name or plugin)"
                        + (f"; did you mean '{hint}'?" if hint else ""),
                        target.origin or route.origin,
                        section=label,
                        key="routes",
                    )
                if found not in names:
                    names.append(found)
            resolved[route.name] = tuple(names)
        return resolved

    def _find_output(self, name: str) -> str | None:
        if name in self.outputs:  # alias, or instance name such as es.0
            return name
        for instance_name, output in self.outputs.items():
            if output.ctx.plugin == name:
                return instance_name
        return None

    def _single_pipeline(self) -> bool:
        return len(self.config.inputs) == 1 and len(self.config.outputs) == 1

    def _instances(self, kind: str) -> Mapping[str, object]:
        if kind == "input":
            return self.inputs
        return self.filters if kind == "filter" else self.outputs

    def _matcher(self, opts: Options, label: str, name: str) -> Matcher:
        match, regex = opts.opt_str("match"), opts.opt_str("match_regex")
        if not match and not regex:
            if self._single_pipeline() and label.startswith("[OUTPUT]"):
                # Fluent Bit's flb_router_io_set: one input and one output go together
                self._note(
                    logging.INFO,
                    "%s: %s has no 'match': one input, one output, so match '*'",
                    label,
                    name,
                )
                return compile_match("*", None)
            targets = {
                target
                for instance in self.config.inputs
                for route in instance.routes
                for out in route.outputs
                for target in (out.name, out.fallback)
            }
            if not targets & {name, label.split()[-1]}:  # an input's routes feed it otherwise
                self._note(
                    logging.WARNING,
                    "%s: %s has no 'match' or 'match_regex': it gets no records",
                    label,
                    name,
                )
        try:
            return compile_match(match, regex)
        except re.error as exc:
            raise ConfigError(
                f"invalid regular expression: {exc}",
                opts.origin("match_regex"),
                section=label,
                key="match_regex",
            ) from None

    # -- running --------------------------------------------------------------

    async def start(self) -> None:
        """Start outputs, the engine, inputs and (when enabled) monitoring."""
        self.build()
        log.info(
            "[relaybit] version=%s, pid=%d, flush=%gs, grace=%gs",
            relaybit.__version__,
            os.getpid(),
            self.settings.flush,
            self.settings.grace,
        )
        await self.start_pipeline()
        await self._start_monitoring()
        self.started_at = time.monotonic()
        log.info(
            "started: %s, %s, %s",
            counted(len(self.inputs), "input"),
            counted(len(self.filters), "filter"),
            counted(len(self.outputs), "output"),
        )

    def _note(self, level: int, message: str, *args: Any) -> None:
        self._build_notes.append((level, message, args))

    def _note_without_effect(self, opts: Options, label: str) -> None:
        """A warning per key of ``label``'s section written but without effect in relaybit."""
        for key, reason, origin in opts.without_effect():
            where = f"{origin}: " if origin is not None else ""
            self._note(
                logging.WARNING,
                "%s%s: '%s' has no effect in relaybit (%s)",
                where,
                label,
                key,
                reason,
            )

    def log_build_notes(self) -> None:
        """Log what the build found (an output without ``match`` ...), once."""
        for level, message, args in self._build_notes:
            log.log(level, message, *args)
        self._build_notes.clear()

    async def start_pipeline(self) -> None:
        """Start outputs, the engine and inputs (of a built pipeline)."""
        self.log_build_notes()  # after the version banner, before anything runs
        for name, output in self.outputs.items():
            await _start_or_explain(f"output {name}", output.start())
            self._started_outputs.append(output)
            log.debug("output %s started", name)
        await self.engine.start()
        for name, inp in self.inputs.items():
            await _start_or_explain(f"input {name}", inp.start())
            self._started_inputs.append(inp)
            log.debug("input %s started", name)
        self._watch_exit_on_eof()
        self._watch_env_files()

    async def stop_pipeline(self, grace: float | None = None) -> int:
        """Stop inputs, flush for up to ``grace`` seconds, stop outputs; the monitoring
        server and signal handlers stay.  Returns the records not delivered."""
        if self._exit_watch is not None and not self._exit_watch.done():
            self._exit_watch.cancel()
        self._exit_watch = None
        if self._env_watch is not None and not self._env_watch.done():
            self._env_watch.cancel()
        self._env_watch = None
        self.engine.begin_stop()
        for inp in reversed(self._started_inputs):
            await self._quietly(f"input {inp.ctx.name}", inp.stop())
        self._started_inputs.clear()
        remaining = await self.engine.stop(grace)
        for output in reversed(self._started_outputs):
            await self._quietly(f"output {output.ctx.name}", output.stop())
        self._started_outputs.clear()
        pool = self.service.get("encoder_pool")
        if pool is not None:
            await pool.aclose()
        return remaining

    def _encoder_pool(self, options: Options) -> EncoderPool | None:
        """The encoder processes of the JSON outputs (none start before a chunk needs one)."""
        try:
            workers = workers_setting(options.str(ENCODER_WORKERS))
        except ValueError:
            raise ConfigErrors(
                [
                    ConfigError(
                        f"{ENCODER_WORKERS} must be auto or a count of 0 or more,"
                        f" not {options.str(ENCODER_WORKERS)!r}",
                        options.origin(ENCODER_WORKERS),
                        section="SERVICE",
                        key=ENCODER_WORKERS,
                    )
                ]
            ) from None
        return EncoderPool(workers, logger=log) if workers else None

    def replica(self, config: AgentConfig) -> Agent:
        """A new, unbuilt Agent for ``config`` with this one's overrides and clock."""
        return Agent(
            config,
            log_level=self.log_level,
            http_server=self._http_server,
            http_port=self._http_port,
            http_listen=self._http_listen,
            clock=self.clock,
        )

    def adopt_pipeline(self, other: Agent) -> None:
        """Take the built (not started) pipeline of ``other``: configuration, service,
        engine and plugins.  This agent keeps its monitoring server, signal handlers,
        reloader and stop state (what a hot reload needs)."""
        assert other._built and not other._started_inputs and not other._started_outputs
        assert not self._started_inputs and not self._started_outputs
        self.config = other.config
        self.settings = other.settings
        self.service = other.service
        self.events = other.events
        self.engine = other.engine
        self.inputs = other.inputs
        self.filters = other.filters
        self.outputs = other.outputs
        self._build_notes = other._build_notes
        self._built = True

    async def _start_monitoring(self) -> None:
        enabled = self.settings.http_server if self._http_server is None else self._http_server
        if not enabled:
            return
        host = self._http_listen or self.settings.http_listen
        port = self.settings.http_port if self._http_port is None else self._http_port
        try:
            from relaybit.monitoring import server
        except ImportError as exc:
            log.warning("monitoring is unavailable (%s); http_server ignored", exc)
            return
        handle = server.start(self, host, port)
        if inspect.isawaitable(handle):
            handle = await _start_or_explain(f"the monitoring API on {host}:{port}", handle)
        self.monitoring = handle

    def request_stop(self) -> None:
        """Ask for a graceful stop (what the first SIGTERM/SIGINT does); a second ends the grace."""
        self._signals += 1
        if self._signals == 1:
            log.info("stop requested: stopping inputs, flushing for up to %gs", self.settings.grace)
            self._stop_requested.set()
        else:
            log.warning("second stop request: ending the grace period now")
            self.engine.force_stop()

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stop_requested.is_set()

    def request_reload(self, via: str = "API") -> ReloadRequest:
        """Ask for a hot reload of the whole configuration (SIGHUP with ``hot_reload on``,
        ``PUT /api/v2/reload``); it runs in the background, see :mod:`relaybit.reload`."""
        return self.reloader.request(via)

    def on_sighup(self) -> None:
        """SIGHUP: a hot reload with ``hot_reload on``, else :meth:`reload_upstreams`."""
        if self.settings.hot_reload:
            self.request_reload("SIGHUP")
        else:
            self.reload_upstreams()

    def reload_upstreams(self) -> None:
        """SIGHUP: outputs with ``reload_upstream()`` re-read their upstream file."""
        for output in self.outputs.values():
            reload = getattr(output, "reload_upstream", None)
            if reload is None:
                continue
            logger = output.ctx.logger  # [output:forward:forward.0], as its other lines
            try:
                result = reload()
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                logger.info("upstream file re-read (SIGHUP)")
            except Exception as exc:
                logger.error("upstream reload failed, the running nodes stay in use: %s", exc)

    def install_signal_handlers(self) -> list[int]:
        """SIGTERM/SIGINT -> :meth:`request_stop`, SIGHUP -> :meth:`on_sighup`."""
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        handlers: dict[int, Callable[[], None]] = {
            signal.SIGTERM: self.request_stop,
            signal.SIGINT: self.request_stop,
        }
        if hasattr(signal, "SIGHUP"):
            handlers[signal.SIGHUP] = self.on_sighup
        for sig, handler in handlers.items():
            try:
                loop.add_signal_handler(sig, handler)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        return installed

    def _watch_exit_on_eof(self) -> None:
        """Stop the agent once every input with ``exit_on_eof on`` is done (Fluent Bit's
        meaning); the graceful stop then delivers what they read."""
        finishing = [inp for inp in self._started_inputs if getattr(inp, "exit_on_eof", False)]
        if not finishing:
            return

        async def watch() -> None:
            await asyncio.gather(*(inp.wait() for inp in finishing))  # type: ignore[attr-defined]
            if not self._stop_requested.is_set():
                log.info("every exit_on_eof input reached the end of its files: stopping")
                self.request_stop()

        self._exit_watch = asyncio.create_task(watch(), name="relaybit-exit-on-eof")

    def _watch_env_files(self) -> None:
        """Variables read from files with a ``refresh_interval`` (YAML ``env:`` ``uri:``):
        when a file's content changes, the whole configuration is reloaded with
        ``hot_reload on`` (a rotated secret takes effect without a restart); without
        it the change is logged once and waits for a restart."""
        watched = [f for f in self.config.env_files if f.refresh_interval > 0]
        if not watched:
            return
        interval = min(f.refresh_interval for f in watched)

        seen = {var.name: var.value for var in watched}

        def changed() -> list[str]:
            """Variables whose file now holds a value not seen before."""
            names = []
            for var in watched:
                try:
                    text = env_file_value(var.path)
                except ConfigError:
                    continue  # gone, unreadable or empty for now: a reload would fail
                if text != seen[var.name]:
                    seen[var.name] = text
                    names.append(var.name)
            return names

        async def watch() -> None:
            while True:
                await asyncio.sleep(interval)
                names = ", ".join(await asyncio.to_thread(changed))
                if not names:
                    continue
                if self.settings.hot_reload:  # a reload that starts stops this watch
                    log.info("[env] the file of %s changed: reloading", names)
                    self.request_reload(f"env file of {names}")
                else:
                    log.warning(
                        "[env] the file of %s changed; the new value takes effect after a"
                        " restart (or with [SERVICE] hot_reload on)",
                        names,
                    )

        self._env_watch = asyncio.create_task(watch(), name="relaybit-env-files")

    async def run_until_stopped(self) -> None:
        """Wait for a stop request, then stop gracefully."""
        installed = self.install_signal_handlers()
        try:
            await self._stop_requested.wait()
            await self.stop()
        finally:
            loop = asyncio.get_running_loop()
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def stop(self, grace: float | None = None) -> int:
        """Stop inputs, flush for up to ``grace`` seconds, stop outputs.

        Returns the number of records not delivered (kept in storage or lost).
        """
        if self._stopped:
            return 0
        self._stopped = True
        self._stop_requested.set()
        await self.reloader.wait()  # a reload in progress ends first (it starts nothing new)
        remaining = await self.stop_pipeline(grace)
        if self.monitoring is not None:
            close = getattr(self.monitoring, "close", None)
            if close is not None:
                await self._quietly("monitoring", close())
            self.monitoring = None
        log.info("stopped")
        return remaining

    @staticmethod
    async def _quietly(what: str, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await asyncio.wait_for(coro, INPUT_STOP_TIMEOUT)
        except TimeoutError:
            log.warning("%s did not stop within %gs", what, INPUT_STOP_TIMEOUT)
        except Exception:
            log.exception("%s failed to stop", what)

    async def serve(self) -> int:
        """Start, run until signalled, stop; the process exit code."""
        self.build()  # a configuration error here: nothing started, no stop to log
        try:
            await self.start()
        except ConfigError:
            await self.stop(0)
            raise
        except StartupFailed as exc:
            log.error("startup failed: %s", exc)
            await self.stop(0)
            return 1
        except Exception as exc:
            log.error("startup failed: %s", exc, exc_info=True)
            await self.stop(0)
            return 1
        await self.run_until_stopped()
        return 0

    # -- observing ------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """Fluent Bit's ``/api/v1/metrics`` JSON; server inputs add their connection counters."""
        metrics = self.engine.metrics()
        inputs = metrics.setdefault("input", {})
        for name, plugin in self.inputs.items():
            extra = plugin.metrics()
            if extra:
                inputs.setdefault(name, {}).update(extra)
            restarts = getattr(plugin, "restarts", None)  # InputPlugin.spawn's supervisor
            if restarts is not None:
                inputs.setdefault(name, {})["restarts"] = restarts.count
        pool = self.service.get("encoder_pool")
        if pool is not None:  # relaybit's encoder processes (encoder.workers)
            metrics["encoder"] = pool.status()
        return metrics

    def status(self) -> dict[str, Any]:
        """Engine, inputs and outputs status for the monitoring API (JSON-able)."""
        uptime = 0.0 if self.started_at is None else time.monotonic() - self.started_at
        return {
            "version": relaybit.__version__,
            "uptime_sec": uptime,
            "engine": self.engine.status(),
            "inputs": {name: p.status() for name, p in self.inputs.items()},
            "outputs": {name: p.status() for name, p in self.outputs.items()},
        }

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running" if self.started_at else "new"
        return (
            f"<Agent {state} inputs={list(self.inputs)} filters={list(self.filters)}"
            f" outputs={list(self.outputs)}>"
        )


def check_config(config: AgentConfig) -> None:
    """Validate ``config`` fully, as ``relaybit --dry-run`` and ``relaybit.validate`` do.

    Every key and value (:func:`~relaybit.config.loader.check_keys`), then every
    plugin built as for a start, none started: what only a plugin checks (a
    regular expression, a parser name, the dummy record's JSON) is found too.
    Raises :class:`ConfigErrors` listing every problem once; warnings of the
    build (an output that gets no records) are logged.
    """
    errors: list[ConfigError] = []
    try:
        check_keys(config)
    except ConfigError as exc:
        errors.extend(_each_error(exc))
    # a bad [SERVICE] key must not hide the plugins' errors: build with its default
    bad = {(e.key or "").lower() for e in errors if e.section == "[SERVICE]"}
    service = tuple(p for p in config.service if p.key.lower() not in bad)
    try:
        agent = Agent(dataclasses.replace(config, service=service))
        agent.build()
        agent.log_build_notes()
    except ConfigError as exc:
        seen = {ConfigError.__str__(e) for e in errors}  # a bad key is found by both
        errors.extend(e for e in _each_error(exc) if ConfigError.__str__(e) not in seen)
    if errors:
        raise ConfigErrors(errors)


#: ``relaybit.validate(config)``: the public name of :func:`check_config`
validate = check_config


def _at(exc: ConfigError, instance: PluginInstance) -> ConfigError:
    """``exc``, or when it has no place of its own (a plugin's check names a key but no
    line) ``exc`` at the line of that key in ``instance``, else at the section."""
    if exc.origin is not None:
        return exc
    origin = instance.origin
    key = (exc.key or "").lower()
    for prop in instance.properties:
        if key and prop.key.lower() == key and prop.origin is not None:
            origin = prop.origin  # the last one written is the one in effect
    return ConfigError(exc.message, origin, section=exc.section, key=exc.key)


def _each_error(exc: ConfigError) -> list[ConfigError]:
    return list(exc.errors) if isinstance(exc, ConfigErrors) else [exc]


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop when installed, else asyncio's default loop."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def run(
    config: AgentConfig,
    *,
    log_level: str | None = None,
    http_server: bool | None = None,
    http_port: int | None = None,
    reload_config: ConfigLoader | None = None,
) -> int:
    """Run the agent for ``config`` until SIGTERM/SIGINT; returns the exit code.

    ``reload_config`` re-reads the configuration for a hot reload (default: the
    file ``config.path``).  Configuration problems raise :class:`ConfigError`
    (the CLI reports them).
    """
    options = resolve_service(config.service)[0]
    settings = ServiceSettings.from_options(options)
    try:
        setup_logging(log_level or settings.log_level, settings.log_file)
    except OSError as exc:
        raise ConfigError(
            f"cannot open the log file {settings.log_file!r}: {exc.strerror or exc}",
            options.origin("log_file"),
            section="[SERVICE]",
            key="log_file",
        ) from None
    agent = Agent(
        config,
        log_level=log_level,
        http_server=http_server,
        http_port=http_port,
        reload_config=reload_config,
    )
    return run_loop(agent.serve())

"""Hot reload: re-read the whole configuration and swap the pipeline (Fluent Bit's ``hot_reload``).

With ``[SERVICE] hot_reload on`` (or ``-Y``), SIGHUP and ``PUT``/``POST
/api/v2/reload`` call :meth:`HotReloader.request`, which runs
:meth:`HotReloader.reload` in the background:

1. re-read the configuration the agent was started with (same file, same
   command-line additions) and validate all of it, building every plugin of
   the new pipeline; any :class:`~relaybit.errors.ConfigError` is logged with
   its file:line and the reload is refused: the running pipeline is untouched;
2. stop the old inputs, let the old engine deliver what it holds for up to
   ``grace`` seconds (filesystem chunks still pending stay on disk and the new
   engine loads them, memory ones are counted as lost), stop the old outputs;
3. start the new pipeline.  The monitoring server keeps serving and reports
   the new pipeline.  Should the new pipeline fail to start (a port in use),
   the previous configuration is started again.

Each reload ends with one ``[reload]`` log line naming its outcome.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Sized
from pathlib import Path
from typing import Any, Protocol

from relaybit.config.loader import check_keys, load_config, service_settings
from relaybit.config.model import AgentConfig
from relaybit.config.service import ServiceSettings
from relaybit.errors import ConfigError, ConfigErrors
from relaybit.logging import counted

log = logging.getLogger("relaybit.reload")


class Reloadable(Protocol):
    """What a reload needs of the agent (:class:`relaybit.agent.Agent` is one)."""

    @property
    def config(self) -> AgentConfig: ...

    @property
    def settings(self) -> ServiceSettings: ...

    @property
    def inputs(self) -> Sized: ...

    @property
    def filters(self) -> Sized: ...

    @property
    def outputs(self) -> Sized: ...

    @property
    def monitoring(self) -> object: ...

    @property
    def stopping(self) -> bool: ...

    def replica(self, config: AgentConfig) -> Reloadable: ...

    def build(self) -> None: ...

    def adopt_pipeline(self, other: Any) -> None: ...

    async def start_pipeline(self) -> None: ...

    async def stop_pipeline(self, grace: float | None = None) -> int: ...

    def request_stop(self) -> None: ...


#: Re-reads the configuration (validated); raises ConfigError when it is not valid.
ConfigLoader = Callable[[], AgentConfig]

#: ``[SERVICE]`` settings a reload cannot change in a running process.
FIXED_SETTINGS = ("http_server", "http_listen", "http_port", "log_level", "log_file")


class ReloadRequest(enum.Enum):
    """The answer to a reload request: ``(reload, status)`` as Fluent Bit's API gives them."""

    STARTED = ("done", 0)
    NOT_ENABLED = ("not enabled", -1)
    IN_PROGRESS = ("in progress", -2)
    STOPPING = ("stopping", -3)
    UNAVAILABLE = ("unavailable", -4)

    @property
    def accepted(self) -> bool:
        return self is ReloadRequest.STARTED

    @property
    def http_status(self) -> int:
        """200 when the reload started, else 400."""
        return 200 if self.accepted else 400

    def body(self) -> dict[str, Any]:
        """The JSON body of ``PUT /api/v2/reload``: ``{"reload", "status"}`` (+ ``error``)."""
        reload, status = self.value
        body: dict[str, Any] = {"reload": reload, "status": status}
        if not self.accepted:
            body["error"] = _REFUSALS[self]
        return body


_REFUSALS = {
    ReloadRequest.NOT_ENABLED: "hot reload is not enabled: set [SERVICE] hot_reload on (or -Y)",
    ReloadRequest.IN_PROGRESS: "a reload is in progress",
    ReloadRequest.STOPPING: "the agent is stopping",
    ReloadRequest.UNAVAILABLE: (
        "the pipeline was given on the command line: there is no configuration file to re-read"
    ),
}


def file_loader(path: str) -> ConfigLoader | None:
    """A loader re-reading ``path`` (load + validate), or None when ``path`` is no file
    (a pipeline given on the command line)."""
    if not path or not Path(path).is_file():
        return None

    def load() -> AgentConfig:
        config = load_config(path)
        check_keys(config)  # the reloader then builds every plugin of it
        return config

    return load


class HotReloader:
    """Reloads one :class:`~relaybit.agent.Agent`: counts, serialises and logs reloads."""

    def __init__(self, agent: Reloadable, load: ConfigLoader | None) -> None:
        self.agent = agent
        self.load = load
        #: successful reloads (``GET /api/v2/reload``'s ``hot_reload_count``)
        self.count = 0
        #: reloads refused (invalid configuration) or aborted (the new pipeline did not start)
        self.failures = 0
        self._busy = False
        self._task: asyncio.Task[bool] | None = None

    @property
    def enabled(self) -> bool:
        """``[SERVICE] hot_reload`` of the running configuration."""
        return self.agent.settings.hot_reload

    @property
    def in_progress(self) -> bool:
        return self._busy

    @property
    def source(self) -> str:
        return self.agent.config.path or "<command line>"

    def request(self, via: str) -> ReloadRequest:
        """Start a reload in the background when Fluent Bit would (hot_reload on, none
        running); ``via`` names the trigger in the log (``SIGHUP``, ``HTTP API``)."""
        answer = self._refusal()
        if answer is not None:
            log.warning("reload requested (%s) but refused: %s", via, _REFUSALS[answer])
            return answer
        self._busy = True  # before the task runs: a second request is refused at once
        self._task = asyncio.create_task(self._run(via), name="relaybit-hot-reload")
        return ReloadRequest.STARTED

    def _refusal(self) -> ReloadRequest | None:
        if not self.enabled:
            return ReloadRequest.NOT_ENABLED
        if self._busy:
            return ReloadRequest.IN_PROGRESS
        if self.agent.stopping:
            return ReloadRequest.STOPPING
        if self.load is None:
            return ReloadRequest.UNAVAILABLE
        return None

    async def _run(self, via: str) -> bool:
        try:
            return await self._reload(via)
        except Exception:
            self.failures += 1
            log.exception("reload of %s failed", self.source)
            return False
        finally:
            self._busy = False

    async def wait(self) -> None:
        """Wait for a reload in progress to end (the agent's stop does, first)."""
        task = self._task
        if task is not None and not task.done():
            await asyncio.gather(task, return_exceptions=True)

    async def reload(self, via: str = "API") -> bool:
        """Reload now, whatever ``hot_reload`` says; True when the new pipeline runs.

        False when the configuration is invalid (logged, the running pipeline
        stays), when the new pipeline could not start (the previous one runs
        again), or when the agent is stopping or another reload runs.
        """
        if self._busy:
            log.warning("reload requested (%s) but refused: a reload is in progress", via)
            return False
        if self.load is None:
            log.error(
                "reload requested (%s) but refused: %s", via, _REFUSALS[ReloadRequest.UNAVAILABLE]
            )
            return False
        self._busy = True
        self._task = asyncio.create_task(self._run(via), name="relaybit-hot-reload")
        return await asyncio.shield(self._task)  # the agent's stop waits for it too

    async def _reload(self, via: str) -> bool:
        agent = self.agent
        source = self.source
        begun = time.monotonic()
        log.info("reloading %s (%s)", source, via)
        fresh = self._load_new(source)
        if fresh is None:
            self.failures += 1
            return False
        _warn_fixed(agent.config, fresh.config)
        if agent.stopping:
            log.info("reload of %s abandoned: the agent is stopping", source)
            return False
        previous = agent.config
        undelivered = await agent.stop_pipeline()
        if agent.stopping:
            log.info(
                "reload of %s abandoned after the old pipeline stopped: the agent is stopping",
                source,
            )
            return False
        agent.adopt_pipeline(fresh)
        try:
            await agent.start_pipeline()
        except Exception as exc:
            self.failures += 1
            await agent.stop_pipeline(0)
            log.error(
                "reload of %s aborted: the new pipeline could not start (%s);"
                " starting the previous configuration again",
                source,
                exc,
            )
            await self._restore(previous)
            return False
        self.count += 1
        self._notify_monitoring()
        log.info(
            "reloaded %s (%s) in %.2fs: %s, %s, %s;"
            " %s of the old pipeline not delivered within grace; hot reloads: %d",
            source,
            via,
            time.monotonic() - begun,
            counted(len(agent.inputs), "input"),
            counted(len(agent.filters), "filter"),
            counted(len(agent.outputs), "output"),
            counted(undelivered, "record"),
            self.count,
        )
        return True

    def _load_new(self, source: str) -> Reloadable | None:
        """The new configuration, built (plugins instantiated, nothing started); None when
        it is invalid (each error logged with its file:line)."""
        assert self.load is not None
        try:
            fresh = self.agent.replica(self.load())
            fresh.build()
        except ConfigError as exc:
            errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
            for error in errors:
                log.error("config error: %s", ConfigError.__str__(error))
            log.error(
                "reload of %s refused: %d configuration error%s; the running pipeline stays",
                source,
                len(errors),
                "" if len(errors) == 1 else "s",
            )
            return None
        except Exception as exc:  # an unreadable file, a plugin that fails to build
            log.error(
                "reload of %s refused: %s: %s; the running pipeline stays",
                source,
                type(exc).__name__,
                exc,
            )
            return None
        return fresh

    async def _restore(self, previous: AgentConfig) -> None:
        agent = self.agent
        try:
            restored = agent.replica(previous)
            restored.build()
            agent.adopt_pipeline(restored)
            await agent.start_pipeline()
        except Exception as exc:
            log.error("the previous configuration could not start again (%s): stopping", exc)
            await agent.stop_pipeline(0)
            agent.request_stop()
            return
        log.info("the previous configuration runs again")

    def _notify_monitoring(self) -> None:
        replaced = getattr(self.agent.monitoring, "pipeline_replaced", None)
        if replaced is not None:
            replaced()

    def __repr__(self) -> str:
        state = "reloading" if self._busy else "enabled" if self.enabled else "disabled"
        return f"<HotReloader {state} count={self.count} failures={self.failures} {self.source}>"


def _warn_fixed(old: AgentConfig, new: AgentConfig) -> None:
    """Log the ``[SERVICE]`` keys that changed but need a restart to apply."""
    before, after = service_settings(old), service_settings(new)
    for name in FIXED_SETTINGS:
        if getattr(before, name) != getattr(after, name):
            log.warning(
                "[SERVICE] %s changed: it applies at the next restart (a reload keeps %r)",
                name,
                getattr(before, name),
            )

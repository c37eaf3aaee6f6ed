"""The emitter input a filter re-emits records through (rewrite_tag, multiline).

Its options (``Emitter_Name``, ``Emitter_Storage.type``,
``Emitter_Mem_Buf_Limit``), and binding it to the engine, which turns a name
already taken into a :class:`~relaybit.errors.ConfigError`.
"""

from __future__ import annotations

from typing import Any

from relaybit.codec.records import encode_entries, new_entry_packer
from relaybit.config.schema import Option
from relaybit.errors import ConfigError
from relaybit.plugins.base import AddEmitterFn, EmitterFn, PluginContext

EMITTER_OPTIONS: tuple[Option, ...] = (
    Option("emitter_name", "str", None, "Emitter input name (emitter_for_<filter name>)"),
    Option(
        "emitter_storage.type",
        "str",
        "memory",
        "Storage of the emitter input",
        choices=("memory", "filesystem"),
    ),
    Option("emitter_mem_buf_limit", "size", 10 * 1024 * 1024, "Emitter mem_buf_limit"),
)


class FilterEmitter:
    """One filter's emitter: configured from its options, usable once :meth:`bind` ran."""

    def __init__(self, ctx: PluginContext) -> None:
        opts = ctx.options
        self.ctx = ctx
        self.name = opts.opt_str("emitter_name") or f"emitter_for_{ctx.name}"
        self.storage_type = opts.str("emitter_storage.type").lower()
        self.mem_buf_limit = opts.int("emitter_mem_buf_limit")
        self.emit: EmitterFn | None = None
        self._packer = new_entry_packer()

    def bind(self, add_emitter: AddEmitterFn) -> None:
        """Create the emitter input; a name already taken is a ConfigError on the filter."""
        try:
            self.emit = add_emitter(
                self.name, storage_type=self.storage_type, mem_buf_limit=self.mem_buf_limit
            )
        except ValueError as exc:
            opts = self.ctx.options
            raise ConfigError(
                f"emitter_name '{self.name}': {exc}",
                opts.origin("emitter_name") or opts.origin("name"),
                section=f"[FILTER] {self.ctx.name}",
                key="emitter_name",
            ) from None

    def pack(self, entries: list[Any]) -> bytes:
        """``entries`` (``[head, record]`` pairs, metadata kept) as the chunk data it takes."""
        return encode_entries(entries, self._packer)

    def __repr__(self) -> str:
        bound = "bound" if self.emit is not None else "unbound"
        return f"<FilterEmitter {self.name} {self.storage_type} {bound}>"

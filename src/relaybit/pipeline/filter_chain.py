"""The filter chain: an input's processors and the filters of a tag, over one decoded batch.

An emitted batch (or the chunk an output's processors see) is decoded once
(:func:`~relaybit.codec.records.decode_entries`), every filter works on the
list the previous one returned, and the result is encoded once at the end,
whatever the number of filters.  Entries are ``[head, record]`` pairs whose
head (the time, or ``[time, metadata]``) filters pass on, so metadata
survives.  The cyclic garbage collector is held off while a batch is in the
chain: its containers have no cycles, and a collection in the middle of a
batch would only walk them.

A filter that fails (raises, or returns something that is not a list) is
logged and skipped: the records pass it unchanged.  When the result cannot be
encoded the batch passes the whole chain unchanged (logged with the count).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from relaybit.codec.records import decode_entries, encode_entries, gc_paused, new_entry_packer
from relaybit.logging import counted
from relaybit.plugins.base import FilterPlugin

log = logging.getLogger("relaybit.engine")


class FilterChain:
    """Runs named filters over msgpack entries: one decode, one encode."""

    def __init__(self, filters: Mapping[str, FilterPlugin], kind: str = "filter") -> None:
        #: the registry the names are looked up in (the engine adds to it)
        self.filters = filters
        self.kind = kind
        #: log labels of names that are not filters (processors), by name
        self.labels: dict[str, str] = {}
        self._packer = new_entry_packer()

    def run(self, names: Sequence[str], tag: str, data: bytes, records: int) -> tuple[bytes, int]:
        """The entries after the filters ``names``, in order, as bytes and a count."""
        with gc_paused():
            return self._run(names, tag, decode_entries(data), records, data)

    def run_entries(
        self,
        names: Sequence[str],
        tag: str,
        entries: list[Any],
        records: int,
        original: Callable[[], bytes],
    ) -> tuple[bytes, int]:
        """:meth:`run` over entries already decoded (``[head, record]`` lists, as
        :func:`~relaybit.codec.records.decode_entries` returns them), encoded once.

        ``original()`` gives the entries' bytes as the input would have emitted
        them: they pass unfiltered when the result cannot be encoded.
        """
        with gc_paused():
            return self._run(names, tag, entries, records, original)

    def _run(
        self,
        names: Sequence[str],
        tag: str,
        entries: list[Any],
        records: int,
        data: bytes | Callable[[], bytes],
    ) -> tuple[bytes, int]:
        filters = self.filters
        for name in names:
            try:
                result = filters[name].filter(tag, entries)
            except Exception:
                log.exception("[%s] failed; records pass unchanged", self._label(name))
                continue
            if result.__class__ is not list and not isinstance(result, list):
                log.error(
                    "[%s] returned %s, not a list of entries; records pass unchanged",
                    self._label(name),
                    type(result).__name__,
                )
                continue
            entries = result
            if not entries:
                return b"", 0
        try:
            return encode_entries(entries, self._packer), len(entries)
        except Exception as exc:
            log.error(
                "[%s] %s: filtered records cannot be encoded (%s); %s unfiltered",
                self.kind,
                ",".join(names),
                exc,
                counted(records, "record passes", "records pass"),
            )
            return (data if isinstance(data, bytes) else data()), records

    def _label(self, name: str) -> str:
        return self.labels.get(name) or f"{self.kind}:{name}"

    def __repr__(self) -> str:
        return f"<FilterChain {self.kind} filters={len(self.filters)}>"

"""Every name of the public API resolves, and importing relaybit stays cheap."""

from __future__ import annotations

import subprocess
import sys

import relaybit


def test_every_exported_name_resolves() -> None:
    for name in relaybit.__all__:
        assert getattr(relaybit, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        relaybit.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_does_not_pull_the_network_stack() -> None:
    code = "import sys, relaybit; print('aiohttp' in sys.modules, 'asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_all_lists_exactly_the_lazy_exports() -> None:
    assert set(relaybit.__all__) - {"__version__"} == set(relaybit._EXPORTS)

"""ForwardOutput.reload_upstream: what SIGHUP calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaybit.config.loader import full_configmap
from relaybit.errors import ConfigErrors
from relaybit.plugins.base import OutputContext
from relaybit.plugins.outputs.forward.output import ForwardOutput
from relaybit.upstream.spec import load_upstream_file

UPSTREAM = """\
[UPSTREAM]
    name up
[NODE]
    name node-1
    host 127.0.0.1
    port 24001
"""
NODE_2 = """\
[NODE]
    name node-2
    host 127.0.0.1
    port 24002
"""


def output_for(path: Path) -> ForwardOutput:
    opts = full_configmap("output", ForwardOutput).resolve([], section="[OUTPUT] forward")
    ctx = OutputContext(
        name="forward.0",
        plugin="forward",
        options=opts,
        upstream=load_upstream_file(path),
        config_dir=path.parent,
    )
    return ForwardOutput(ctx)


def test_reload_takes_the_new_node_list(tmp_path: Path) -> None:
    path = tmp_path / "upstream.conf"
    path.write_text(UPSTREAM)
    output = output_for(path)
    path.write_text(UPSTREAM + NODE_2)
    output.reload_upstream()
    assert [n.name for n in output.upstream.nodes] == ["node-1", "node-2"]
    assert [n.name for n in output.spec.nodes] == ["node-1", "node-2"]


def test_a_bad_file_leaves_the_running_nodes(tmp_path: Path) -> None:
    path = tmp_path / "upstream.conf"
    path.write_text(UPSTREAM)
    output = output_for(path)
    path.write_text(UPSTREAM + NODE_2 + "    not_a_forward_key 1\n")
    with pytest.raises(ConfigErrors, match="not_a_forward_key"):
        output.reload_upstream()
    assert [n.name for n in output.upstream.nodes] == ["node-1"]

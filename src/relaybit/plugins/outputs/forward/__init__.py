"""The ``forward`` output (Fluent Bit's out_forward), delivering through an Upstream."""

from relaybit.plugins.outputs.forward.options import FORWARD_OUTPUT_OPTIONS, ForwardNodeSettings
from relaybit.plugins.outputs.forward.output import ForwardOutput

__all__ = ["FORWARD_OUTPUT_OPTIONS", "ForwardNodeSettings", "ForwardOutput"]

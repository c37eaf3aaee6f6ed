"""relaybit: a Fluent Bit compatible log forwarding agent and library."""

__version__ = "0.1.0"

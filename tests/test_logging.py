"""relaybit.logging helpers."""

from __future__ import annotations

from relaybit.logging import counted


def test_counted_gives_the_noun_in_the_right_number() -> None:
    assert counted(1, "record") == "1 record"
    assert counted(0, "record") == "0 records"
    assert counted(2, "chunk file") == "2 chunk files"
    assert counted(1, "retry", "retries") == "1 retry"
    assert counted(3, "retry", "retries") == "3 retries"
    assert counted(1, "record was", "records were") == "1 record was"

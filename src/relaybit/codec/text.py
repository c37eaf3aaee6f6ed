"""Strings msgpack can write: a lone surrogate becomes U+FFFD, as Fluent Bit writes it.

A record's str can hold surrogates for two reasons:

- bytes of a line that were not UTF-8, decoded with ``surrogateescape``
  (U+DC80..U+DCFF): written back as those bytes, as Fluent Bit keeps them;
- an escape with no pair, ``"\\ud800"`` in a JSON body or a logfmt value (a cut
  emoji): msgpack refuses to write it as text.  Fluent Bit 5.1.1 writes U+FFFD
  (``EF BF BD``) for it, in every input that reads JSON (http, elasticsearch,
  tcp, dummy, the json parser) and in logfmt; so does relaybit.

:func:`replace_lone_surrogates` does it on a str; :data:`SURROGATES` is the
same rule as a codec error handler, for a msgpack ``Packer``'s
``unicode_errors``: a record that still holds a lone surrogate (a plugin's
parser, a filter) is written instead of failing its whole batch.
"""

from __future__ import annotations

import codecs
import re

#: what a lone surrogate becomes (Fluent Bit's bytes: EF BF BD)
REPLACEMENT = "\ufffd"
_REPLACEMENT_BYTES = REPLACEMENT.encode()
#: every surrogate, and every one but U+DC80..U+DCFF (the bytes of a line that are
#: not UTF-8, as ``surrogateescape`` reads them)
_SURROGATE = re.compile("[\ud800-\udfff]")
_LONE = re.compile("[\ud800-\udc7f\udd00-\udfff]")

#: ``unicode_errors`` of a msgpack Packer (or ``str.encode``'s errors): U+DC80..U+DCFF
#: are written as their byte, any other surrogate as U+FFFD
SURROGATES = "relaybit.surrogates"


def replace_lone_surrogates(text: str, *, raw_bytes: bool = True) -> str:
    """``text`` with each lone surrogate made U+FFFD.

    ``raw_bytes`` keeps U+DC80..U+DCFF: in a str decoded with ``surrogateescape``
    they stand for bytes that were not UTF-8.  Give False when ``text`` came from
    valid UTF-8, so that every surrogate in it came from an escape.
    """
    return (_LONE if raw_bytes else _SURROGATE).sub(REPLACEMENT, text)


def has_surrogates(text: str) -> bool:
    """True when ``text`` holds a surrogate (bytes that were not UTF-8, or an escape)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def _surrogates(exc: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = bytearray()
    for char in exc.object[exc.start : exc.end]:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(code - 0xDC00)
        elif 0xD800 <= code <= 0xDFFF:
            out += _REPLACEMENT_BYTES
        else:  # not a surrogate: not ours to decide
            raise exc
    return bytes(out), exc.end


codecs.register_error(SURROGATES, _surrogates)

"""Fluent Bit's ``Time_Format`` dialect (strptime plus ``%L``) -> EventTime. Pure.

Directives: ``%Y %y %m %d %e %H %k %I %l %M %S %p %j %b %h %B %a %A %z %Z %s
%T %D %F %R %n %t %%`` and ``%L`` (fractional seconds, up to nanoseconds; ``%f``
is accepted as an alias).  As in Fluent Bit: whitespace in the format matches
any run of whitespace, text after the last directive is ignored, a format
without a year takes the current year (and today's date when it has no day),
and a time without ``%z``/``%Z`` is read as UTC shifted by ``Time_Offset``.

Parsing is cached: a time text seen before costs one dict lookup (logs repeat
the same second many times), and for formats with a fraction (``...%S.%L%z``)
the cache key is the text without its fraction digits, so one full parse per
distinct second serves every fraction in it.  Formats without a year (which
depend on today's date) are not cached.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from relaybit.codec.msgpack import EventTime

_MONTHS = [m.lower() for m in calendar.month_name[1:]]
_MONTHS_ABBR = [m.lower() for m in calendar.month_abbr[1:]]
_DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_DAYS_ABBR = "mon|tue|wed|thu|fri|sat|sun"
_UTC_NAMES = {"utc", "gmt", "ut", "z"}

_DIRECTIVES: dict[str, str] = {
    "Y": r"(?P<Y>\d{4})",
    "y": r"(?P<y>\d{2})",
    "m": r"(?P<m>\d{1,2})",
    "d": r"\s*(?P<d>\d{1,2})",
    "e": r"\s*(?P<d>\d{1,2})",
    "H": r"\s*(?P<H>\d{1,2})",
    "k": r"\s*(?P<H>\d{1,2})",
    "I": r"\s*(?P<I>\d{1,2})",
    "l": r"\s*(?P<I>\d{1,2})",
    "M": r"(?P<M>\d{1,2})",
    "S": r"(?P<S>\d{1,2})",
    "L": r"(?P<L>\d+)",
    "f": r"(?P<L>\d+)",
    "p": r"(?P<p>am|pm|a\.m\.|p\.m\.)",
    "j": r"(?P<j>\d{1,3})",
    "b": r"(?P<b>" + "|".join(_MONTHS + _MONTHS_ABBR) + ")",
    "h": r"(?P<b>" + "|".join(_MONTHS + _MONTHS_ABBR) + ")",
    "B": r"(?P<b>" + "|".join(_MONTHS + _MONTHS_ABBR) + ")",
    "a": r"(?:" + _DAYS + "|" + _DAYS_ABBR + ")",
    "A": r"(?:" + _DAYS + "|" + _DAYS_ABBR + ")",
    "z": r"(?P<z>[zZ]|[+-]\d{2}(?::?\d{2})?)",
    "Z": r"(?P<Z>[A-Za-z]{1,5}|[+-]\d{2}(?::?\d{2})?)",
    "s": r"(?P<s>-?\d+)",
    "n": r"\s*",
    "t": r"\s*",
    "%": "%",
}
_SCALE = [10 ** (9 - i) for i in range(10)]
_COMPOSITE = {"T": "%H:%M:%S", "D": "%m/%d/%y", "F": "%Y-%m-%d", "R": "%H:%M", "r": "%I:%M:%S %p"}


def parse_offset(text: str) -> int:
    """``+0900``, ``-07:00``, ``+09``, ``Z``/``UTC`` -> seconds east of UTC; ValueError otherwise."""
    value = text.strip()
    if value.lower() in _UTC_NAMES:
        return 0
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})?", value)
    if not m:
        raise ValueError(f"expected a UTC offset such as +0900, -07:00 or Z, got {text!r}")
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"UTC offset out of range: {text!r}")
    seconds = hours * 3600 + minutes * 60
    return -seconds if m.group(1) == "-" else seconds


def _expand(fmt: str) -> str:
    for key, value in _COMPOSITE.items():
        fmt = fmt.replace("%" + key, value)
    return fmt


def _compile(fmt: str) -> re.Pattern[str]:
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    text = _expand(fmt)
    while i < len(text):
        ch = text[i]
        if ch == "%":
            if i + 1 >= len(text):
                raise ValueError(f"time format {fmt!r} ends with a lone '%'")
            code = text[i + 1]
            # strftime flags such as %-d or %_d: accept and ignore the flag
            if code in "-_0^#" and i + 2 < len(text):
                i += 1
                code = text[i + 1]
            pattern = _DIRECTIVES.get(code)
            if pattern is None:
                raise ValueError(f"unsupported directive %{code} in time format {fmt!r}")
            group = re.search(r"\?P<(\w+)>", pattern)
            if group and group.group(1) in seen:
                raise ValueError(f"time format {fmt!r} sets {group.group(1)!r} twice")
            if group:
                seen.add(group.group(1))
            out.append(pattern)
            i += 2
        elif ch.isspace():
            out.append(r"\s*")
            while i < len(text) and text[i].isspace():
                i += 1
        else:
            out.append(re.escape(ch))
            i += 1
    return re.compile("".join(out), re.IGNORECASE)


#: distinct time texts (or seconds, for fraction formats) a TimeFormat remembers
CACHE_SIZE = 4096
_UNSET = object()
#: what may follow %L for the fraction fast path (nothing that can begin with a digit)
_AFTER_FRACTION = re.compile(r"(?:%[zZ]|[^%0-9])")


def _fraction_separator(fmt: str) -> str | None:
    """The literal before ``%L``/``%f`` when a text can be split there safely, else None.

    Safe: the literal is not a letter, digit, space, sign or '%', appears once
    before the fraction and nothing before it can match it (no ``%p``: "a.m."),
    and what follows ``%L`` cannot begin with a digit.
    """
    text = _expand(fmt)
    for directive in ("%L", "%f"):
        at = text.find(directive)
        if at > 0:
            break
    else:
        return None
    sep = text[at - 1]
    head, tail = text[: at - 1], text[at + 2 :]
    if sep.isalnum() or sep.isspace() or sep in "+-%" or sep in head or "%p" in head:
        return None
    if "%L" in tail or "%f" in tail:
        return None
    if tail and not _AFTER_FRACTION.match(tail):
        return None
    return sep


@dataclass(frozen=True)
class TimeFormat:
    """A compiled ``Time_Format``; :meth:`parse` returns an EventTime or None."""

    fmt: str
    offset: int = 0  #: Time_Offset in seconds east of UTC (used when the text has no zone)
    now: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    #: text (or text without its fraction) -> EventTime / seconds / None
    _cache: dict[str, object] = field(init=False, repr=False, compare=False)
    _cached: bool = field(init=False, repr=False, compare=False)
    _sep: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = _compile(self.fmt)
        object.__setattr__(self, "_regex", regex)
        object.__setattr__(self, "_cache", {})
        # without a year the result depends on today's date: no cache
        dated = any(g in regex.groupindex for g in ("Y", "y", "s"))
        object.__setattr__(self, "_cached", dated)
        object.__setattr__(self, "_sep", _fraction_separator(self.fmt) if dated else None)

    @property
    def cached(self) -> bool:
        """False for formats without a year: their times depend on today's date."""
        return self._cached

    @property
    def fractional(self) -> bool:
        """True when the cache holds seconds per second and each text has its own fraction."""
        return self._sep is not None

    def parse(self, text: str) -> EventTime | None:
        """The time in ``text``, or None when it does not follow the format."""
        if self._sep is None:
            if not self._cached:
                return self._parse(text)
            cache = self._cache
            hit = cache.get(text, _UNSET)
            if hit is _UNSET:
                hit = self._parse(text)
                if len(cache) >= CACHE_SIZE:
                    cache.clear()
                cache[text] = hit
            return hit  # type: ignore[return-value]
        parts = self._fraction_parts(text)
        if parts is _UNSET:
            return self._parse(text)
        return None if parts is None else EventTime(*parts)  # type: ignore[misc]

    def parse_parts(self, text: str) -> tuple[int, int] | None:
        """``(seconds, nanoseconds)`` of the time in ``text`` (what :meth:`parse` holds), or None."""
        if self._sep is not None:
            parts = self._fraction_parts(text)
            if parts is not _UNSET:
                return parts  # type: ignore[return-value]
        when = self.parse(text)
        return None if when is None else (when.seconds, when.nanoseconds)

    def _fraction_parts(self, text: str) -> object:
        """(seconds, nanos) or None through the per-second cache; _UNSET: take the full parse."""
        sep = self._sep
        assert sep is not None
        at = text.find(sep)
        if at < 0:
            return _UNSET
        rest = text[at + 1 :]
        after = rest.lstrip("0123456789")
        ndigits = len(rest) - len(after)
        if not ndigits or (after and after[0].isdigit()):  # none, or non-ASCII digits
            return _UNSET
        cache = self._cache
        key = text[:at] + after
        seconds = cache.get(key, _UNSET)
        if seconds is _UNSET:
            whole = self._parse(text[: at + 1] + "0" + after)
            seconds = None if whole is None else whole.seconds
            if len(cache) >= CACHE_SIZE:
                cache.clear()
            cache[key] = seconds
        if seconds is None:
            return None
        if ndigits >= 9:
            return seconds, int(rest[:9])
        return seconds, int(rest[:ndigits]) * _SCALE[ndigits]

    def _parse(self, text: str) -> EventTime | None:
        m = self._regex.match(text.strip())
        if not m:
            return None
        g = m.groupdict()
        nanos = 0
        if g.get("L"):
            digits = g["L"][:9]
            nanos = int(digits.ljust(9, "0"))
        if g.get("s") is not None:
            seconds = int(g["s"])
            # an EventTime holds uint32 seconds (epoch milliseconds do not fit)
            return EventTime(seconds, nanos) if 0 <= seconds <= 0xFFFFFFFF else None
        try:
            seconds = self._epoch(g)
        except ValueError:
            return None
        if seconds < 0 or seconds > 0xFFFFFFFF:
            return None
        return EventTime(seconds, nanos)

    def _epoch(self, g: dict[str, str | None]) -> int:
        today = time.gmtime(self.now())
        if g.get("Y"):
            year = int(g["Y"] or 0)
        elif g.get("y"):
            short = int(g["y"] or 0)
            year = 1900 + short if short >= 69 else 2000 + short
        else:
            year = today.tm_year
        has_date = bool(g.get("m") or g.get("b") or g.get("d") or g.get("j"))
        month = today.tm_mon if not has_date else 1
        day = today.tm_mday if not has_date else 1
        if g.get("m"):
            month = int(g["m"] or 0)
        if g.get("b"):
            name = (g["b"] or "").lower()
            month = (_MONTHS.index(name) if name in _MONTHS else _MONTHS_ABBR.index(name)) + 1
        if g.get("d"):
            day = int(g["d"] or 0)
        hour = int(g.get("H") or 0)
        if g.get("I"):
            hour = int(g["I"] or 0) % 12
            if (g.get("p") or "").lower().startswith("p"):
                hour += 12
        minute, second = int(g.get("M") or 0), int(g.get("S") or 0)
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second <= 60):
            raise ValueError("field out of range")
        if day > calendar.monthrange(year, month)[1]:
            raise ValueError("day out of range")
        if g.get("j"):
            epoch_day = calendar.timegm((year, 1, 1, 0, 0, 0)) + (int(g["j"] or 1) - 1) * 86400
            base = epoch_day + hour * 3600 + minute * 60 + second
        else:
            base = calendar.timegm((year, month, day, hour, minute, second))
        zone = g.get("z") or g.get("Z")
        if zone:
            return base - parse_offset(zone)
        return base - self.offset

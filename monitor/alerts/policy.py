"""When an alert may go out: digest schedules, quiet hours and per-channel rate limits.

All three are pure functions of a clock value, so tests drive them with a fixed ``now``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor import config

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

_DAILY = re.compile(r"^\s*daily\s+(\d{1,2}):(\d{2})\s*$", re.I)
_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 60}

RULE_OPTION_KEYS = {"mode", "digest", "timezone"}  # a [[rule]]'s alert-policy keys
CHANNEL_POLICY_KEYS = {"quiet_hours", "timezone", "rate_limit", "digest"}
DEFAULT_OVERFLOW_DIGEST = "hourly"


def zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError(f"'timezone' must be an IANA name like \"Europe/Berlin\", got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


@dataclass(frozen=True)
class Schedule:
    """A digest schedule: "hourly", "daily HH:MM" or a five-field cron expression."""

    spec: str
    trigger: CronTrigger

    @classmethod
    def parse(cls, spec: object, tz: ZoneInfo) -> Schedule:
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError(f"'digest' must be \"hourly\", \"daily HH:MM\" or a cron expression, got {spec!r}")
        from apscheduler.triggers.cron import (
            CronTrigger,  # here: check-config without a digest needs none
        )

        s = spec.strip()
        m = _DAILY.match(s)
        try:
            if s.lower() == "hourly":
                trig = CronTrigger(minute=0, timezone=tz)
            elif m:
                hh, mm = int(m.group(1)), int(m.group(2))
                if hh > 23 or mm > 59:
                    raise ValueError(f"no such time of day: {s!r}")
                trig = CronTrigger(hour=hh, minute=mm, timezone=tz)
            elif len(s.split()) == 5:
                trig = CronTrigger.from_crontab(s, timezone=tz)
            else:
                raise ValueError("expected \"hourly\", \"daily HH:MM\" or five cron fields")
        except ValueError as exc:
            raise ValueError(f"'digest' {spec!r}: {exc}") from exc
        return cls(s, trig)

    def next_after(self, when: datetime) -> datetime:
        """The first fire time strictly after ``when``."""
        nxt = self.trigger.get_next_fire_time(None, when + timedelta(microseconds=1))
        assert nxt is not None
        return nxt


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    tz: ZoneInfo

    @classmethod
    def parse(cls, spec: object, tz: ZoneInfo) -> QuietHours:
        m = _HHMM.match(spec) if isinstance(spec, str) else None
        if not m:
            raise ValueError(f"'quiet_hours' must look like \"22:00-07:00\", got {spec!r}")
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(f"'quiet_hours' {spec!r}: no such time of day")
        return cls(time(h1, m1), time(h2, m2), tz)

    def end_if_quiet(self, now: datetime) -> datetime | None:
        """When quiet hours end if ``now`` is inside them, else None."""
        local = now.astimezone(self.tz)
        t = local.time().replace(tzinfo=None)
        if self.start == self.end:
            return None
        if self.start < self.end:
            inside = self.start <= t < self.end
        else:  # spans midnight
            inside = t >= self.start or t < self.end
        if not inside:
            return None
        end_day = local.date() if t < self.end else local.date() + timedelta(days=1)
        return datetime.combine(end_day, self.end, tzinfo=self.tz)


@dataclass(frozen=True)
class RateLimit:
    count: int
    window: float  # seconds

    @classmethod
    def parse(cls, spec: object) -> RateLimit:
        m = _RATE.match(spec) if isinstance(spec, str) else None
        if not m or int(m.group(1)) < 1:
            raise ValueError(f"'rate_limit' must look like \"10/60m\" (at most 10 in 60 minutes), got {spec!r}")
        return cls(int(m.group(1)), float(m.group(2)) * _UNITS[m.group(3)])


@dataclass(frozen=True)
class ChannelPolicy:
    quiet: QuietHours | None = None
    rate: RateLimit | None = None
    digest: Schedule | None = None  # where rate-limit overflow goes

    @classmethod
    def from_options(cls, opts: Mapping[str, Any]) -> ChannelPolicy:
        tz = zone(opts.get("timezone", "UTC"))
        quiet = QuietHours.parse(opts["quiet_hours"], tz) if "quiet_hours" in opts else None
        rate = RateLimit.parse(opts["rate_limit"]) if "rate_limit" in opts else None
        # Only a rate limit overflows into the digest: without one, no schedule (and no
        # APScheduler cron import on the way to the daemon's first poll).
        digest = Schedule.parse(opts.get("digest", DEFAULT_OVERFLOW_DIGEST), tz) if rate is not None else None
        return cls(quiet, rate, digest)

    @staticmethod
    def problems(opts: Mapping[str, Any]) -> list[str]:
        problems = []
        try:
            tz = zone(opts.get("timezone", "UTC"))
        except ValueError as exc:
            return [str(exc)]
        for key, parse in (("quiet_hours", lambda v: QuietHours.parse(v, tz)),
                           ("rate_limit", RateLimit.parse), ("digest", lambda v: Schedule.parse(v, tz))):
            if key in opts:
                try:
                    parse(opts[key])
                except ValueError as exc:
                    problems.append(str(exc))
        return problems


@dataclass(frozen=True)
class RulePolicy:
    mode: str = "instant"
    digest: Schedule | None = None

    @classmethod
    def from_options(cls, opts: Mapping[str, Any]) -> RulePolicy:
        mode = opts.get("mode", "digest" if "digest" in opts else "instant")
        if mode not in ("instant", "digest"):
            raise ValueError(f"'mode' must be \"instant\" or \"digest\", got {mode!r}")
        if mode == "instant":
            if "digest" in opts:
                raise ValueError("'digest' needs mode = \"digest\"")
            zone(opts.get("timezone", "UTC"))
            return cls()
        if "digest" not in opts:
            raise ValueError("mode = \"digest\" needs a schedule: digest = \"daily 08:00\", \"hourly\" or a cron expression")
        return cls("digest", Schedule.parse(opts["digest"], zone(opts.get("timezone", "UTC"))))

    @staticmethod
    def problems(opts: Mapping[str, Any]) -> list[str]:
        try:
            RulePolicy.from_options(opts)
        except ValueError as exc:
            return [str(exc)]
        return []


config.register_rule_options(RULE_OPTION_KEYS, RulePolicy.problems)

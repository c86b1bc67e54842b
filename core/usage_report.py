"""`python -m core usage`: each limited caller key's counts in the current windows, from the usage table: requests
and tokens this minute, tokens and cost today, cost this month (the windows the key's limits count in); with a
cost limit, its cost per model too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TextIO

from core.budgets import day_window, minute_window, month_window
from core.config import ConfigError
from core.config.credential import LazyCredential
from core.config.model import CallerKey
from core.config.provider import load_config
from core.models.prices import money
from core.usage_table import TableAddress, UsageTable, WindowUsage


def run_usage(environ: Mapping[str, str], out: TextIO) -> int:
    table_address = TableAddress.from_environ(environ)
    if table_address is None:
        out.write("No usage table: set USAGE_TABLE_ENDPOINT (or USAGE_TABLE_CONNECTION_STRING). Without one, "
                  "each gateway process counts on its own and keeps nothing.\n")  # fmt: skip
        return 2
    try:
        config = load_config(environ)
    except ConfigError as error:
        out.write(f"Configuration is invalid ({len(error.problems)} problem(s)); run `python -m core check`.\n")
        return 1
    keys = [key for key in config.settings.api_keys if key.limits is not None]
    if not keys:
        out.write("No caller key has limits.\n")
        return 0
    table = UsageTable(table_address, LazyCredential(environ))
    try:
        lines = asyncio.run(_lines(table, keys, time.time()))
    except Exception as error:  # the store's failures are many; say which, never a traceback
        out.write(f"Could not read the {table_address.label}: {type(error).__name__}\n")
        return 1
    out.write(f"Usage in the {table_address.label} (UTC windows):\n")
    out.writelines(line + "\n" for line in lines)
    return 0


async def _lines(table: UsageTable, keys: list[CallerKey], now: float) -> list[str]:
    minute, _ = minute_window(now)
    day, _ = day_window(now)
    month, _, _ = month_window(now)
    width = max(len(key.name) for key in keys)
    lines = []
    for key in keys:
        assert key.limits is not None
        limits = key.limits
        # The day's entity exists only for keys with a daily budget, the month's for a monthly cost limit.
        daily = limits.tokens_per_day is not None or limits.cost_per_day is not None
        windows = [minute] + ([day] if daily else []) + ([month] if limits.cost_per_month is not None else [])
        stored = await table.read_usage(key.name, windows)
        counts = {window: usage.used for window, usage in stored.items()}
        line = (
            f"{key.name.ljust(width)}  this minute: requests {_of(counts[minute].requests, limits.requests_per_minute)}"
            f", tokens {_of(counts[minute].tokens, limits.tokens_per_minute)}"
        )
        if day in counts:
            line += f"; today: tokens {_of(counts[day].tokens, limits.tokens_per_day)}"
            if limits.cost_per_day is not None:
                line += f", cost {_money_of(counts[day].cost, limits.cost_per_day)}"
        if month in counts:
            line += f"; this month: cost {_money_of(counts[month].cost, limits.cost_per_month)}"
        lines.append(line)
        lines += _per_model(stored.get(day) if limits.cost_per_day is not None else None, stored.get(month))
    return lines


def _per_model(day: WindowUsage | None, month: WindowUsage | None) -> list[str]:
    """A key's cost per model today and this month, one line each, dearest first."""
    today = day.by_model() if day is not None else {}
    this_month = month.by_model() if month is not None else {}
    models = sorted({*today, *this_month}, key=lambda model: (-this_month.get(model, 0), -today.get(model, 0), model))
    lines = []
    for model in models:
        parts = ([f"today {money(today.get(model, 0))}"] if day is not None else []) + (
            [f"this month {money(this_month.get(model, 0))}"] if month is not None else []
        )
        lines.append(f"    {model}: cost {', '.join(parts)}")
    return lines


def _of(used: int, limit: int | None) -> str:
    return f"{used}/{limit}" if limit is not None else str(used)


def _money_of(used: int, limit: int | None) -> str:
    return f"{money(used)}/{money(limit)}" if limit is not None else money(used)

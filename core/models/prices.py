"""What a call costs: prices per million tokens, and the built-in fallback table.

A price comes from the configuration (a model's `price`, or a pool member's, which overrides its model's for that
pool); else from DEFAULT_PRICES, when the model behind the deployment is one it lists. Amounts are held as integer
micro-units (millionths of the account's currency), so the usage table's integer counts and conflict-free
arithmetic hold money as they hold tokens; a price per million tokens in micro-units is exactly a token's cost in
millionths. Reasoning tokens are output tokens (Azure counts them in `completion_tokens` and bills them as output);
cached prompt tokens are billed at `cachedInput`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MICROS = 1_000_000  # micro-units in one unit of the currency

# The fallback table: Azure OpenAI Global Standard prices, USD per million tokens (input, cached input, output).
# Transcribed from Microsoft's page as last read when prices of this era were published, not fetched at run time,
# and not checked against the live page when this table was written: configure `price` for what you are billed.
DEFAULT_PRICES_DATE = "2025-08-07"
DEFAULT_PRICES_SOURCE = "https://azure.microsoft.com/pricing/details/cognitive-services/openai-service/"
DEFAULT_PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-5": (1.25, 0.125, 10.00),
    "gpt-5-mini": (0.25, 0.025, 2.00),
    "gpt-5-nano": (0.05, 0.005, 0.40),
    "gpt-4.1": (2.00, 0.50, 8.00),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4.1-nano": (0.10, 0.025, 0.40),
    "gpt-4o": (2.50, 1.25, 10.00),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "o3": (2.00, 0.50, 8.00),
    "o4-mini": (1.10, 0.275, 4.40),
    "o3-mini": (1.10, 0.55, 4.40),
    "text-embedding-3-small": (0.02, 0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.10, 0.0),
}
# A listed name, then nothing or the version's date: "gpt-4o-2024-08-06" is gpt-4o, "gpt-4o-mini" is not.
_DATED = re.compile(r"(?P<name>.+?)(?:-\d{4}-\d{2}-\d{2})?")


@dataclass(frozen=True, slots=True)
class Price:
    """Per million tokens, in micro-units: 2.50 a million is 2_500_000, a token's cost in millionths."""

    input: int
    cached_input: int
    output: int
    default: bool = False  # from DEFAULT_PRICES, not the configuration

    @classmethod
    def of(cls, input: float, cached_input: float | None, output: float, *, default: bool = False) -> Price:
        """From the configuration's units (the currency per million tokens); cached input, when not given, costs
        as much as input."""
        cached = input if cached_input is None else cached_input
        return cls(micros(input), micros(cached), micros(output), default)

    def cost(self, prompt: int, cached: int, completion: int) -> int:
        """A call's cost in micro-units, rounded up: `cached` of the `prompt` tokens at the cached price, the rest
        at the input price; the `completion` (its reasoning tokens included) at the output price."""
        cached = min(max(cached, 0), prompt)
        total = (prompt - cached) * self.input + cached * self.cached_input + completion * self.output
        return -(-total // MICROS)


def dearest(prices: Iterable[Price | None]) -> Price | None:
    """What a call that may go to any of these deployments (a pool's members) reserves at: each kind of token at
    its highest price; None when none is priced."""
    known = [price for price in prices if price is not None]
    if not known:
        return None
    if len(known) == 1:
        return known[0]
    return Price(
        max(p.input for p in known), max(p.cached_input for p in known), max(p.output for p in known), known[0].default
    )


def micros(amount: float) -> int:
    """An amount of the currency in micro-units."""
    return round(amount * MICROS)


def money(amount: int) -> str:
    """Micro-units as the currency, with as many decimals as it takes (at least two): 1.5, 0.000125."""
    text = f"{amount / MICROS:.6f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def default_price(*names: str | None) -> tuple[Price, str] | None:
    """The fallback price of the first name (a baseModel, a model id, a deployment name) the table lists, and
    that name; None when it lists none."""
    for name in names:
        if not name:
            continue
        match = _DATED.fullmatch(name.strip().lower())
        listed = match.group("name") if match else None
        if listed in DEFAULT_PRICES:
            return Price.of(*DEFAULT_PRICES[listed], default=True), listed
    return None

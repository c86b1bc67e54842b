"""Prices (a model's `price`, a pool member's) and cost limits (limits.costPerDay / costPerMonth) in the config."""

from __future__ import annotations

import textwrap

from core.check import describe
from core.models.prices import DEFAULT_PRICES_DATE, DEFAULT_PRICES_SOURCE, Price, default_price, money
from tests.support.config_text import load, problems

GROUPS = """
groups:
  - group: east
    apiKey: k
    instanceName: east
    version: 2024-10-21
    models:
      gpt-4o-east: {deploymentName: gpt-4o, price: {input: 2.5, cachedInput: 1.25, output: 10}}
      gpt-4o-west: {deploymentName: gpt-4o-2024-11-20}
      house-model: {deploymentName: house}
      embed: {deploymentName: emb, price: {input: 0.02}}
"""


def config(gateway: str) -> str:
    return GROUPS + "gateway:\n" + textwrap.indent(textwrap.dedent(gateway), "  ")


def test_a_price_is_held_in_micro_units_and_costs_each_kind_of_token() -> None:
    price = Price.of(2.50, 1.25, 10.00)
    assert (price.input, price.cached_input, price.output) == (2_500_000, 1_250_000, 10_000_000)
    # 1000 prompt tokens of which 400 cached, 200 completion tokens (reasoning included):
    # 600 x 2.5 + 400 x 1.25 + 200 x 10 = 1500 + 500 + 2000 micro-units.
    assert price.cost(1000, 400, 200) == 4000
    assert price.cost(1, 0, 0) == 3  # rounded up: never less than it costs
    assert price.cost(10, 99, 0) == 13  # cached beyond the prompt is the prompt
    assert Price.of(1.0, None, 0).cached_input == 1_000_000  # cached input defaults to the input price
    assert money(4000) == "0.004" and money(5_000_000) == "5.00" and money(1_250_000) == "1.25"


def test_the_default_table_knows_dated_model_names_and_no_others() -> None:
    found = default_price("gpt-4o-2024-08-06")
    assert found is not None and found[1] == "gpt-4o" and found[0].default
    mini = default_price(None, "my-deployment", "gpt-4o-mini")
    assert mini is not None and mini[1] == "gpt-4o-mini"
    assert default_price("gpt-4o-turbo-custom", "house") is None
    assert DEFAULT_PRICES_SOURCE.startswith("https://azure.microsoft.com/pricing/")


def test_prices_resolve_from_the_config_then_the_default_table_and_a_pool_member_may_override() -> None:
    loaded = load(
        config(
            """
            allowAnonymous: true
            pools:
              gpt-4o:
                models:
                  - gpt-4o-east
                  - {model: gpt-4o-west, price: {input: 3, output: 12}}
            """
        )
    )
    east = loaded.routes["gpt-4o-east"].backends[0]
    assert east.price == Price.of(2.5, 1.25, 10) and east.price_from == "price"
    west = loaded.routes["gpt-4o-west"].backends[0]
    assert west.price is not None and west.price.default and west.price_from == "gpt-4o"
    assert loaded.routes["house-model"].backends[0].price is None
    pool = loaded.routes["gpt-4o"].pool
    assert pool is not None
    member_prices = [(m.model, m.backend.price, m.backend.price_from) for m in pool.members]
    assert member_prices == [
        ("gpt-4o-east", Price.of(2.5, 1.25, 10), "price"),
        ("gpt-4o-west", Price.of(3, 3, 12), "pool member price"),
    ]
    assert west.price is not None and west.price.input == 2_500_000  # outside the pool, its model's price
    # A call to the pool reserves each kind of token at its dearest member's price.
    assert loaded.routes["gpt-4o"].price == Price(3_000_000, 3_000_000, 12_000_000)


def test_check_says_which_prices_are_the_default_tables_and_how_old_it_is() -> None:
    text = describe(load(config("allowAnonymous: true\n")))
    prices = text.split("Prices per million tokens", 1)[1]
    rows = {line.split()[0]: line.split()[1:] for line in prices.splitlines()[2:6]}
    assert rows["gpt-4o-east"] == ["2.50", "1.25", "10.00", "price"]
    assert rows["gpt-4o-west"][-3:] == ["default", "table", "(gpt-4o)"]
    assert rows["house-model"] == ["-", "-", "-", "unpriced"]
    assert rows["embed"] == ["0.02", "0.02", "0.00", "price"]
    assert DEFAULT_PRICES_DATE in prices and DEFAULT_PRICES_SOURCE in prices


def test_cost_limits_resolve_to_micro_units() -> None:
    loaded = load(
        config(
            """
            apiKeys:
              - {name: team, key: k1, models: [gpt-4o-east], limits: {costPerDay: 5, costPerMonth: 100.5}}
            """
        )
    )
    limits = loaded.settings.api_keys[0].limits
    assert limits is not None and (limits.cost_per_day, limits.cost_per_month) == (5_000_000, 100_500_000)


def test_a_key_with_a_cost_limit_that_reaches_an_unpriced_model_is_refused_with_every_such_key_named() -> None:
    found = problems(
        config(
            """
            apiKeys:
              - {name: all, key: k1, limits: {costPerDay: 5}}
              - {name: some, key: k2, models: [gpt-4o-east, house-model], limits: {costPerMonth: 1}}
              - {name: priced, key: k3, models: [gpt-4o-east, gpt-4o-west, embed], limits: {costPerDay: 1}}
              - {name: tokens-only, key: k4, limits: {tokensPerDay: 1000}}
              - {name: pooled, key: k5, models: [mixed], limits: {costPerDay: 1}}
            pools:
              mixed: {models: [gpt-4o-east, house-model]}
              priced-pool: {models: [gpt-4o-east, {model: house-model, price: {input: 1, output: 1}}]}
            """
        )
    )
    text = "\n".join(found)
    assert 'gateway.apiKeys[0] (all) has a cost limit, but may call "house-model", "mixed", which has no price' in text
    assert 'gateway.apiKeys[1] (some) has a cost limit, but may call "house-model", which' in text
    assert 'gateway.apiKeys[4] (pooled) has a cost limit, but may call "mixed", which' in text
    assert "(priced)" not in text and "(tokens-only)" not in text and "priced-pool" not in text
    assert all(getattr(problem, "line", None) for problem in found if "cost limit" in problem)


def test_prices_and_cost_limits_must_not_be_negative() -> None:
    found = problems(
        config(
            """
            apiKeys:
              - {name: a, key: k1, models: [gpt-4o-east], limits: {costPerDay: 0, costPerMonth: -1}}
            """
        ).replace("input: 0.02", "input: -0.02")
    )
    text = "\n".join(found)
    assert "embed.price.input: Input should be greater than or equal to 0" in text
    assert "limits.costPerDay: Input should be greater than 0" in text
    assert "limits.costPerMonth: Input should be greater than 0" in text


def test_a_key_with_a_cost_limit_that_may_start_assistant_runs_is_warned_about() -> None:
    text = config(
        """
        apiKeys:
          - {name: runner, key: k1, limits: {costPerDay: 5}, models: [gpt-4o-east], resources: true}
          - {name: safe, key: k2, limits: {costPerDay: 5}, models: [gpt-4o-east]}
        """
    )
    assert not any("Assistants API" in warning for warning in load(text).warnings)  # assistants off: no runs
    with_assistants = "assistants: true\n" + text.replace("    models:\n", "    assistants: true\n    models:\n", 1)
    warnings = [warning for warning in load(with_assistants).warnings if "Assistants API" in warning]
    assert len(warnings) == 1 and warnings[0].startswith("gateway.apiKeys[0] (runner) has a cost limit and may use")
    assert getattr(warnings[0], "line", None)

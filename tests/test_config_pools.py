"""gateway.pools: one public model over several models of the groups, validated all at once."""

from __future__ import annotations

import textwrap

from core.check import describe
from tests.support.config_text import load, problems

GROUPS = """
groups:
  - group: east
    apiKey: k
    instanceName: east
    version: 2024-10-21
    models:
      gpt-4o-ptu-east: {deploymentName: ptu}
      gpt-4o-paygo-east: {deploymentName: paygo}
      embed: {deploymentName: embed}
  - group: west
    apiKey: k
    instanceName: west
    version: 2024-10-21
    models:
      gpt-4o-paygo-west: {deploymentName: paygo}
"""


def config(gateway: str) -> str:
    return GROUPS + "gateway:\n  allowAnonymous: true\n" + textwrap.indent(textwrap.dedent(gateway), "  ")


def test_a_pool_resolves_to_one_route_over_its_members() -> None:
    loaded = load(
        config(
            """
            pools:
              gpt-4o:
                strategy: priority
                models:
                  - gpt-4o-ptu-east
                  - {model: gpt-4o-paygo-west, priority: 2, weight: 3}
            """
        )
    )
    route = loaded.routes["gpt-4o"]
    assert route.pool is not None
    assert [(m.model, m.backend.group, m.priority, m.weight) for m in route.pool.members] == [
        ("gpt-4o-ptu-east", "east", 1, 1),
        ("gpt-4o-paygo-west", "west", 2, 3),
    ]
    assert route.pool.max_attempts == 2  # the default: every member
    assert "gpt-4o-paygo-west" in loaded.routes  # members stay addressable by their own ids


def test_a_pool_may_take_the_id_of_one_of_its_members() -> None:
    loaded = load(config("pools:\n  gpt-4o-ptu-east: {models: [gpt-4o-ptu-east, gpt-4o-paygo-west]}\n"))
    assert list(loaded.routes).count("gpt-4o-ptu-east") == 1
    assert loaded.routes["gpt-4o-ptu-east"].pool is not None


def test_every_pool_problem_is_listed_at_once() -> None:
    found = problems(
        config(
            """
            apiKeys:
              - {name: a, key: k1, models: [gpt-4o]}
            pools:
              gpt-4o:
                strategy: fastest
                models: [gpt-4o-ptu-east, {model: gpt-4o-paygo-west, weight: 0, priority: 0}]
              empty: {models: []}
              typo: {models: [gpt-4o-ptu-eats, gpt-4o-paygo-east, gpt-4o-paygo-east]}
              embed: {models: [gpt-4o-paygo-east, gpt-4o-paygo-west]}
              nested: {models: [typo, gpt-4o-paygo-east]}
              other-rules: {models: [gpt-4o-ptu-east, gpt-4o-paygo-east], cooldown: 3}
            """
        ).replace("allowAnonymous: true", "allowAnonymous: false")
    )
    text = "\n".join(found)
    strategies = "'priority', 'round-robin', 'weighted' or 'most-remaining'"
    assert f"gateway.pools.gpt-4o.strategy: Input should be {strategies}" in text
    assert "gateway.pools.gpt-4o.models[1].weight: Input should be greater than or equal to 1" in text
    assert "gateway.pools.gpt-4o.models[1].priority: Input should be greater than or equal to 1" in text
    assert "gateway.pools.empty has no models" in text
    typo = 'gateway.pools.typo.models names "gpt-4o-ptu-eats", which no group serves (did you mean "gpt-4o-ptu-east"?).'
    assert typo in text
    assert 'gateway.pools.typo.models lists "gpt-4o-paygo-east" twice.' in text
    assert 'gateway.pools.embed: "embed" is already a model of the groups' in text
    assert 'gateway.pools.nested.models names the pool "typo"' in text
    assert 'gateway.pools.other-rules: member "gpt-4o-paygo-east" is also in gateway.pools.typo' in text
    assert "apiKeys" not in text  # a caller key's models name the pool id


def test_a_pool_of_one_member_is_a_warning() -> None:
    loaded = load(config("pools:\n  solo: {models: [gpt-4o-ptu-east]}\n"))
    assert any("gateway.pools.solo has a single member" in warning for warning in loaded.warnings)


def test_check_shows_each_pool_with_its_members_strategy_and_order() -> None:
    loaded = load(
        config(
            """
            pools:
              gpt-4o:
                strategy: priority
                maxAttempts: 2
                models: [{model: gpt-4o-paygo-west, priority: 2, weight: 3}, gpt-4o-ptu-east, gpt-4o-paygo-east]
            """
        )
    )
    out = describe(loaded)
    assert "Pool gpt-4o: strategy priority; up to 2 attempt(s);" in out
    assert "Responses API (/v1/responses, routed by model): east, west" in out  # no assistants needed
    pool = out.split("Pool gpt-4o:", 1)[1].split("\n\n", 1)[0]
    rows = [line.split() for line in pool.splitlines() if line.startswith("  ") and "gpt-4o-" in line]
    assert rows == [
        ["1", "gpt-4o-ptu-east", "east", "1", "1"],
        ["2", "gpt-4o-paygo-east", "east", "1", "1"],
        ["3", "gpt-4o-paygo-west", "west", "2", "3"],
    ]


def test_pool_health_settings_resolve_with_the_gateways_cooldown_cap() -> None:
    loaded = load(
        config(
            """
            maxCooldown: 90
            pools:
              gpt-4o:
                models: [gpt-4o-ptu-east, gpt-4o-paygo-west]
                firstByteTimeout: 2
                circuitBreaker: {failurePercent: 25, minimumRequests: 40, window: 30, trip: 15}
              other: {models: [gpt-4o-paygo-east, embed]}
            """
        )
    )
    pool = loaded.routes["gpt-4o"].pool
    assert pool is not None and pool.max_cooldown == 90 and pool.first_byte_timeout_for == "streams"
    breaker = pool.breaker
    assert (breaker.failure_percent, breaker.minimum_requests, breaker.window, breaker.trip) == (25, 40, 30, 15)
    plain = loaded.routes["other"].pool
    assert plain is not None and (plain.breaker.failure_percent, plain.breaker.minimum_requests) == (50, 10)
    out = describe(loaded)
    assert "cooldown 10s (at most 90s); breaker 25% of 40+ attempt(s) in 30s failed -> open 15s" in out
    assert "first byte within 2s (streams)" in out


def test_the_breakers_old_failure_count_is_ignored_with_a_word_on_what_replaced_it() -> None:
    loaded = load(
        config("pools:\n  p: {models: [gpt-4o-ptu-east, gpt-4o-paygo-west], circuitBreaker: {failures: 3}}\n")
    )
    assert any(
        '"gateway.pools.p.circuitBreaker.failures" is ignored: the breaker judges a failure rate' in warning
        for warning in loaded.warnings
    )


def test_a_breaker_rate_outside_one_to_a_hundred_percent_is_refused() -> None:
    found = problems(
        config("pools:\n  p: {models: [gpt-4o-ptu-east, gpt-4o-paygo-west], circuitBreaker: {failurePercent: 0}}\n")
    )
    assert any("failurePercent" in problem for problem in found)
    found = problems(config("maxCooldown: 0\n"))
    assert any("maxCooldown" in problem for problem in found)

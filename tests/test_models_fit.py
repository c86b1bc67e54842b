"""Fitting a chat completion to its model, and learning from Azure's refusals (core/models/fit.py)."""

from __future__ import annotations

import orjson

from core.models.families import family_of
from core.models.fit import Fit, LearnedFits

ASKED = {
    "model": "m",
    "messages": [{"role": "user", "content": "Hi"}],
    "max_tokens": 100,
    "temperature": 0.2,
    "top_p": 1,  # the default: harmless, kept
    "presence_penalty": 0.5,
    "logprobs": True,
    "top_logprobs": 2,
    "logit_bias": {"50256": -100},
}


def refusal(code: str, param: str | None) -> bytes:
    return orjson.dumps({"error": {"message": "...", "type": "invalid_request_error", "param": param, "code": code}})


def test_a_reasoning_model_gets_max_completion_tokens_and_no_sampling_or_logprobs() -> None:
    fitted, changes = Fit.of(family_of("gpt-5-mini")).apply(ASKED)
    assert fitted == {"model": "m", "messages": ASKED["messages"], "max_completion_tokens": 100, "top_p": 1}
    assert changes == [
        "max_tokens->max_completion_tokens",
        "-presence_penalty",
        "-temperature",
        "-logit_bias",
        "-logprobs",
        "-top_logprobs",
    ]


def test_an_explicit_max_completion_tokens_wins_over_max_tokens() -> None:
    fitted, _ = Fit.of(family_of("o4-mini")).apply({"max_tokens": 10, "max_completion_tokens": 99})
    assert fitted == {"max_completion_tokens": 99}


def test_a_model_that_samples_without_effort_keeps_sampling_while_its_effort_is_none() -> None:
    fit = Fit.of(family_of("gpt-5.1"))  # effort "none" unless the call says otherwise
    fitted, changes = fit.apply(ASKED)
    assert fitted["temperature"] == 0.2 and fitted["logprobs"] is True and fitted["top_logprobs"] == 2
    assert changes == ["max_tokens->max_completion_tokens", "-presence_penalty", "-logit_bias"]
    fitted, changes = fit.apply({**ASKED, "reasoning_effort": "high"})
    assert "temperature" not in fitted and "-temperature" in changes and "-logprobs" in changes


def test_a_chat_model_and_an_unknown_one_are_sent_as_they_come() -> None:
    for family in (family_of("gpt-4o"), None):
        fitted, changes = Fit.of(family).apply(ASKED)
        assert fitted is ASKED and changes == []


def test_a_request_with_nothing_to_fit_is_the_same_object() -> None:
    payload = {"model": "m", "messages": [], "max_completion_tokens": 5}
    assert Fit.of(family_of("gpt-5")).apply(payload)[0] is payload


def test_azure_teaches_one_repair_at_a_time_and_never_the_same_twice() -> None:
    fit = Fit.of(None)
    fit = fit.learned_from(refusal("unsupported_parameter", "max_tokens")) or fit
    assert fit.rename_max_tokens
    assert fit.learned_from(refusal("unsupported_parameter", "max_tokens")) is None
    learned = fit.learned_from(refusal("unsupported_value", "temperature"))
    assert learned is not None and learned.drop_sampling == {"temperature"}
    assert learned.apply({"temperature": 0.5, "top_p": 0.5})[0] == {"top_p": 0.5}  # only what Azure refused
    learned = learned.learned_from(refusal("unsupported_parameter", "logprobs"))
    assert learned is not None and learned.drop == {"logprobs"}


def test_what_the_gateway_cannot_repair_teaches_nothing() -> None:
    fit = Fit.of(None)
    for error in (
        refusal("unsupported_parameter", "tools"),
        refusal("content_filter", None),
        refusal("invalid_value", "reasoning_effort"),
        b"<html>Bad Gateway</html>",
        b'{"error": "text"}',
        b"[]",
    ):
        assert fit.learned_from(error) is None, error


def test_operation_not_supported_marks_the_deployment_responses_only() -> None:
    body = b'{"error":{"code":"OperationNotSupported","message":"The chatCompletion operation does not work..."}}'
    learned = Fit.of(None).learned_from(body)
    assert learned is not None and learned.responses_only
    assert learned.learned_from(body) is None


DEVELOPER_FIRST = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
ROLE_REFUSED = orjson.dumps(
    {
        "error": {
            "message": "Invalid value: 'developer'. Supported values are: 'system', 'assistant', 'user', "
            "'function', and 'tool'.",
            "type": "invalid_request_error",
            "param": "messages[0].role",
            "code": "invalid_value",
        }
    }
)


def test_an_api_version_before_the_developer_role_gets_system_messages() -> None:
    for family in (family_of("gpt-4o"), family_of("o3-mini"), None):
        fit = Fit.of(family, developer_as_system=True)
        payload = {"messages": DEVELOPER_FIRST, "temperature": 1}
        fitted, changes = fit.apply(payload)
        assert fitted == {
            "messages": [{"role": "system", "content": "Be brief."}, DEVELOPER_FIRST[1]],
            "temperature": 1,
        }
        assert changes == ["developer->system"] and payload["messages"] is DEVELOPER_FIRST  # the caller's untouched
    plain = {"messages": [{"role": "system", "content": "x"}]}
    assert Fit.of(None, developer_as_system=True).apply(plain) == (plain, [])
    assert Fit.of(family_of("gpt-4o")).apply({"messages": DEVELOPER_FIRST})[1] == []  # a version that takes it


def test_azures_role_enum_refusal_teaches_developer_as_system() -> None:
    learned = Fit.of(None).learned_from(ROLE_REFUSED)
    assert learned is not None and learned.developer_as_system
    assert learned.learned_from(ROLE_REFUSED) is None
    other_role = ROLE_REFUSED.replace(b"'developer'", b"'critic'")
    assert Fit.of(None).learned_from(other_role) is None  # a role no version knows: the caller's mistake


def test_learned_fits_are_bounded() -> None:
    learned = LearnedFits(max_entries=2)
    for index in range(3):
        learned.remember(("g", f"d{index}"), Fit(rename_max_tokens=True))
    assert learned.get(("g", "d0")) is None and learned.get(("g", "d2")) is not None

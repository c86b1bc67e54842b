"""How a caller's key is read from its request headers (as the HTTP surface hands them over: lower-case names)."""

import pytest

from core.auth import Authenticator, Caller, presented_key
from core.config.model import CallerKey, GatewaySettings
from core.errors import GatewayError


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"authorization": "Bearer sk-1"}, "sk-1"),
        ({"authorization": "bearer \t sk-1 \t"}, "sk-1"),
        # Everything after the scheme and its whitespace is the key, spaces inside it included.
        ({"authorization": "Bearer key with spaces"}, "key with spaces"),
        ({"authorization": "Basic dXNlcjpwYXNz", "api-key": " azure-key "}, "azure-key"),
        ({"authorization": "Bearer", "api-key": "azure-key"}, "azure-key"),
        ({"api-key": "   "}, None),
        ({}, None),
    ],
)
def test_the_presented_key(headers: dict[str, str], key: str | None) -> None:
    assert presented_key(headers) == key


def test_without_gateway_keys_the_caller_is_named_for_the_access_log_by_whether_it_sent_a_key() -> None:
    authenticator = Authenticator(GatewaySettings())
    assert authenticator.authenticate({"api-key": "azure-key"}) == Caller("pass-through", None, "azure-key")
    assert authenticator.authenticate({}) == Caller("anonymous", None, None)


def test_a_gateway_key_names_its_caller_and_is_not_passed_on() -> None:
    alice, bob = CallerKey("alice", "key-alice"), CallerKey("bob", "key-bob", models=frozenset({"gpt-4o"}))
    authenticator = Authenticator(GatewaySettings(api_keys=(alice, bob)))
    assert authenticator.authenticate({"authorization": "Bearer key-bob"}) == Caller("bob", bob, None)
    for headers in ({}, {"api-key": "key-carol"}, {"api-key": "key-alic"}):
        with pytest.raises(GatewayError) as refused:
            authenticator.authenticate(headers)
        assert (refused.value.status, refused.value.code) == (401, "invalid_api_key")


def test_among_many_keys_each_names_its_own_caller_and_nothing_near_one_is_a_key() -> None:
    """A gateway serving many tenants: each key is found among thousands (by its digest), and a key's prefix, a
    longer key, another case or a key of the same length differing in one character is refused."""
    keys = tuple(CallerKey(f"tenant-{i}", f"sk-tenant-{i:05d}-{'x' * 24}") for i in range(5000))
    authenticator = Authenticator(GatewaySettings(api_keys=keys))
    for key in (keys[0], keys[2500], keys[-1]):
        assert authenticator.authenticate({"api-key": key.key}) == Caller(key.name, key, None)
        assert authenticator.authenticate({"authorization": f"Bearer {key.key}"}).name == key.name
    near = keys[1234].key
    for presented in (near[:-1], near + "x", near.upper(), near[:-1] + "y", ""):
        with pytest.raises(GatewayError) as refused:
            authenticator.authenticate({"api-key": presented} if presented else {})
        assert (refused.value.status, refused.value.code) == (401, "invalid_api_key")

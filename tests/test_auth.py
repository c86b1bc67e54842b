"""How a caller's key is read from its request headers (as the HTTP surface hands them over: lower-case names)."""

import pytest

from core.auth import presented_key


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

"""Validation: LibreChat's exact messages, the gateway's own rules, all problems at once."""

from __future__ import annotations

import pytest

from core.config import ConfigError, in_file_order, located
from tests.support.config_text import load, problems

ANONYMOUS = "gateway:\n  allowAnonymous: true\n"


def test_duplicate_group_name() -> None:
    found = problems(
        """
        groups:
          - {group: g, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true}}
          - {group: g, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {b: true}}
        gateway: {allowAnonymous: true}
        """
    )
    assert found == ['Duplicate group name detected: "g". Group names must be unique.']


def test_serverless_without_base_url() -> None:
    found = problems(
        """
        groups:
          - {group: sls, apiKey: k, serverless: true, models: {mistral-large: true}}
        gateway: {allowAnonymous: true}
        """
    )
    assert found == ['Group "sls" is serverless but missing mandatory "baseURL."']


def test_missing_instance_name() -> None:
    found = problems(
        """
        groups:
          - {group: g, apiKey: k, deploymentName: d, version: 2024-10-21, models: {a: true}}
        gateway: {allowAnonymous: true}
        """
    )
    assert found == ['Group "g" is missing an "instanceName" for non-serverless configuration.']


def test_duplicate_model_across_groups() -> None:
    found = problems(
        """
        groups:
          - {group: a, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {gpt-4: true}}
          - {group: b, apiKey: k, instanceName: j, deploymentName: d, version: 2024-10-21, models: {gpt-4: true}}
        gateway: {allowAnonymous: true}
        """
    )
    assert found == ['Duplicate model name detected: "gpt-4". Model names must be unique across groups.']


@pytest.mark.parametrize(
    "group_fields",
    ["deploymentName: d", "version: 2024-10-21", ""],
    ids=["no-version", "no-deployment", "neither"],
)
def test_true_model_needs_group_deployment_and_version(group_fields: str) -> None:
    found = problems(
        f"""
        groups:
          - group: g
            apiKey: k
            instanceName: i
            {group_fields}
            models:
              gpt-4: true
        gateway: {{allowAnonymous: true}}
        """
    )
    assert found == ['Model "gpt-4" in group "g" is missing a deploymentName or version.']


def test_object_model_missing_after_inheritance() -> None:
    found = problems(
        """
        groups:
          - group: g
            apiKey: k
            instanceName: i
            version: "2024-10-21"
            models:
              inherits-version: {deploymentName: d}
              lacks-deployment: {version: "2024-10-21"}
              empty: {}
        gateway: {allowAnonymous: true}
        """
    )
    assert found == [
        'Model "lacks-deployment" in group "g" is missing a required deploymentName or version.',
        'Model "empty" in group "g" is missing a required deploymentName or version.',
    ]


def test_serverless_skips_deployment_and_version_checks() -> None:
    config = load(
        """
        groups:
          - group: sls
            apiKey: k
            baseURL: https://m.eastus2.inference.ai.azure.com/v1/chat/completions
            serverless: true
            models:
              mistral-large: true
              phi-3: {}
        gateway: {allowAnonymous: true}
        """
    )
    assert list(config.routes) == ["mistral-large", "phi-3"]


def test_missing_env_variable() -> None:
    found = problems(
        """
        groups:
          - {group: g, apiKey: "${NOPE}", instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true}}
        gateway: {allowAnonymous: true}
        """
    )
    assert found == ['Azure configuration environment variable "${NOPE}" was not found.']


# LibreChat's own message (api/server/services/start/azureOpenAI.js).
NO_ASSISTANTS_MODELS = (
    "No Azure models are configured to support assistants. Please remove the `assistants` field or "
    "configure at least one model to support assistants."
)


def test_assistants_enabled_without_capable_group() -> None:
    found = problems(
        """
        assistants: true
        groups:
          - {group: g, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true}}
        gateway: {allowAnonymous: true}
        """
    )
    assert found == [NO_ASSISTANTS_MODELS]


def test_assistants_satisfied_by_a_model_flag() -> None:
    config = load(
        """
        assistants: true
        groups:
          - group: g
            apiKey: k
            instanceName: i
            version: 2024-10-21
            models:
              a: {deploymentName: d, assistants: true}
              b: {deploymentName: e}
        gateway: {allowAnonymous: true}
        """
    )
    assert config.routes["a"].backends[0].assistants is True
    assert config.routes["b"].backends[0].assistants is False


def test_group_without_models() -> None:
    found = problems(
        """
        groups:
          - {group: empty, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {}}
        gateway: {allowAnonymous: true}
        """
    )
    assert len(found) == 1
    assert found[0].startswith('Group "empty" has no models')


def test_base_url_must_be_plain_http_url() -> None:
    found = problems(
        """
        groups:
          - {group: a, apiKey: k, instanceName: i, baseURL: "ftp://x", deploymentName: d, version: 2024-10-21,
             models: {m1: true}}
          - {group: b, apiKey: k, instanceName: i, baseURL: "https://x/?key=secret", deploymentName: d,
             version: 2024-10-21, models: {m2: true}}
        gateway: {allowAnonymous: true}
        """
    )
    assert found == [
        'Group "a" baseURL is not an http:// or https:// URL.',
        'Group "b" baseURL has a query string or fragment, but the gateway adds ?api-version= itself.',
    ]
    assert not any("secret" in problem for problem in found)


def test_every_problem_is_reported_together_in_file_order() -> None:
    with pytest.raises(ConfigError) as caught:
        load(
            """
            assistants: true
            groups:
              - group: west
                apiKey: "${WEST_KEY}"
                instanceName: west
                version: "2024-02-01"
                models:
                  gpt-4: true
              - group: west
                apiKey: k
                serverless: true
                models:
                  gpt-4: true
              - group: east
                apiKey: "${EAST_KEY}"
                models:
                  gpt-35: {deploymentName: d}
            """
        )
    error = caught.value
    assert error.problems == [
        'Azure configuration environment variable "${WEST_KEY}" was not found.',
        'Azure configuration environment variable "${EAST_KEY}" was not found.',
        'Model "gpt-4" in group "west" (groups[0]) is missing a deploymentName or version.',
        'Duplicate group name detected: "west". Group names must be unique.',
        'Group "west" (groups[1]) is serverless but missing mandatory "baseURL."',
        'Duplicate model name detected: "gpt-4". Model names must be unique across groups.',
        'Group "east" is missing an "instanceName" for non-serverless configuration.',
        'Model "gpt-35" in group "east" is missing a required deploymentName or version.',
        NO_ASSISTANTS_MODELS,
        error.problems[9],  # open relay
    ]
    assert "open relay" in error.problems[9]
    # Printed (serve's refusal, the log) in file order with their lines, as `check` prints them.
    assert str(error) == "\n".join(located(problem) for problem in in_file_order(error.problems))


# -- gateway rules ------------------------------------------------------------------------

KEYED_GROUPS = """
groups:
  - {group: west, apiKey: k1, instanceName: w, deploymentName: d, version: 2024-10-21, models: {a: true}}
  - {group: east, apiKey: k2, instanceName: e, deploymentName: d, version: 2024-10-21, models: {b: true}}
"""


def test_no_open_relay() -> None:
    found = problems(KEYED_GROUPS)
    assert len(found) == 1
    message = found[0]
    assert message.startswith('Groups "west", "east" hold a server-side apiKey but gateway.apiKeys is empty')
    assert "open relay" in message
    assert "gateway.apiKeys" in message and "gateway.allowAnonymous: true" in message


def test_open_relay_allowed_explicitly_or_closed_by_caller_keys() -> None:
    assert load(KEYED_GROUPS + ANONYMOUS).settings.api_keys == ()
    keyed = load(KEYED_GROUPS + "gateway:\n  apiKeys:\n    - {name: alice, key: s3cret}\n")
    assert keyed.settings.api_keys[0].name == "alice"


def test_passthrough_without_caller_keys_is_fine() -> None:
    config = load(
        """
        groups:
          - {group: byok, instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true}}
        gateway: {groups: {byok: {auth: passthrough}}}
        """
    )
    assert config.passthrough
    assert config.routes["a"].backends[0].auth == "passthrough"


def test_passthrough_with_caller_keys_is_invalid() -> None:
    found = problems(
        """
        groups:
          - {group: keyed, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true}}
          - {group: byok, instanceName: i, deploymentName: d, version: 2024-10-21, models: {b: true}}
        gateway:
          apiKeys: [{name: alice, key: s3cret}]
          groups: {byok: {auth: passthrough}}
        """
    )
    assert len(found) == 1
    assert found[0].startswith('Group "byok" has no apiKey')
    assert "forwarded to Azure" in found[0]


def test_a_group_without_a_key_must_ask_for_passthrough_in_words() -> None:
    """A typo (`apikey:`) must not quietly send every caller's key to Azure."""
    found = problems(
        """
        groups:
          - {group: typo, apikey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true}}
        gateway:
          apiKey: [{name: alice, key: s3cret}]
        """
    )
    assert len(found) == 1
    assert found[0].startswith('Group "typo" has no apiKey. Give it one')
    assert "gateway.groups.typo.auth: passthrough" in found[0]
    both = problems(
        """
        groups:
          - {group: g, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true}}
        gateway: {groups: {g: {auth: passthrough}}, allowAnonymous: true}
        """
    )
    assert both == ['gateway.groups.g.auth is "passthrough", but group "g" also sets an apiKey: use one or the other.']


def test_caller_key_problems() -> None:
    found = problems(
        """
        groups:
          - {group: g, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {gpt-4o: true}}
        gateway:
          apiKeys:
            - {name: alice, key: key-a}
            - {name: bob, key: "  "}
            - {name: carol, key: key-a}
            - {name: alice, key: key-d}
            - {name: "", key: key-e, models: [gpt-4o, gpt-5]}
        """
    )
    # Entries the schema rejects are left out of the rules, which still check the others.
    assert found == [
        "gateway.apiKeys[1].key: Value must not be empty or blank",
        "gateway.apiKeys[4].name: Value must not be empty or blank",
        "gateway.apiKeys[2].key is the same as gateway.apiKeys[0].key; every caller key must be unique.",
        'gateway.apiKeys[3].name "alice" is already used by gateway.apiKeys[0]; caller names must be unique.',
    ]
    assert not any("key-a" in problem for problem in found)


def test_caller_key_from_env_and_unresolved() -> None:
    text = KEYED_GROUPS + "gateway:\n  apiKeys:\n    - {name: alice, key: '${ALICE_KEY}'}\n"
    assert load(text, {"ALICE_KEY": "from-env"}).settings.api_keys[0].key == "from-env"
    assert problems(text) == ['Azure configuration environment variable "${ALICE_KEY}" was not found.']


# -- a literal baseURL ----------------------------------------------------------------------------

LITERAL = """
groups:
  - group: g
    apiKey: k
    instanceName: r
    baseURL: "%s"
    version: 2024-10-21
    models:
      a: {deploymentName: one}
      %s
gateway: {allowAnonymous: true}
"""


@pytest.mark.parametrize(
    "base_url",
    [
        "https://r.openai.azure.com/openai/deployments/one",
        "https://gateway.ai.cloudflare.com/v1/acct/gw/azure-openai/r/one",
    ],
)
def test_a_literal_base_url_gets_every_model_of_its_group_as_librechat_sends_them(base_url: str) -> None:
    config = load(LITERAL % (base_url, "b: {deploymentName: two}"))
    assert [str(w) for w in config.warnings if "baseURL names" in w] == [
        (
            'Group "g" baseURL names the deployment "one" (no ${DEPLOYMENT_NAME}): model "b" (deployment "two") is '
            'sent there too, as LibreChat does, so "one" answers it. Write ${DEPLOYMENT_NAME} in its place to reach '
            "each model's own deployment."
        )
    ]
    backend = config.routes["b"].backends[0]
    assert backend.url("chat/completions") == f"{base_url}/chat/completions?api-version=2024-10-21"
    named = load(LITERAL % (base_url, "c: {deploymentName: one}"))
    assert (
        named.routes["c"].backends[0].url("chat/completions") == f"{base_url}/chat/completions?api-version=2024-10-21"
    )
    assert not [w for w in named.warnings if "baseURL names" in w]


def test_a_base_url_with_the_placeholder_serves_every_deployment() -> None:
    text = LITERAL % ("https://r.openai.azure.com/openai/deployments/${DEPLOYMENT_NAME}", "b: {deploymentName: two}")
    assert load(text).routes["b"].backends[0].base_url == "https://r.openai.azure.com/openai/deployments/two"

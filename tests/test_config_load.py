"""Sources and document shapes: CONFIG_PATH, stulzq env mode and config.yaml, the librechat.yaml forms."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from core.config import ConfigError
from core.config.api_versions import API_VERSION_FORMS
from core.config.load import NO_CONFIGURATION
from core.config.provider import load_config
from tests.support.config_text import FIXTURES, FULL_ENV, load, problems

SECTION = """
groups:
  - group: g
    apiKey: k
    instanceName: inst
    deploymentName: dep
    version: "2024-10-21"
    models:
      gpt-4o: true
"""


def indent(text: str, spaces: int) -> str:
    return textwrap.indent(textwrap.dedent(text), " " * spaces)


# -- sources --------------------------------------------------------------------------------


def test_no_configuration() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({})
    assert caught.value.problems == [NO_CONFIGURATION]
    assert str(caught.value) == NO_CONFIGURATION


def test_config_path_wins_and_source_is_the_absolute_path(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "gw.yaml").write_text(SECTION + "gateway: {allowAnonymous: true}\n")
    monkeypatch.chdir(tmp_path)
    config = load_config({"CONFIG_PATH": "gw.yaml", "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com/"})
    assert config.source == f"file:{tmp_path / 'gw.yaml'}"
    assert config.routes["gpt-4o"].backends[0].group == "g"


def test_unreadable_config_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config({"CONFIG_PATH": str(missing)})
    assert caught.value.problems == [f"Cannot read CONFIG_PATH {missing}: No such file or directory."]


def test_yaml_syntax_error_names_the_line() -> None:
    found = problems("groups:\n  - group: g\n    models: {a: true\n")
    assert len(found) == 1
    assert found[0].startswith("test: invalid YAML at line 4, column 1:")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "test: the configuration is empty."),
        ("# only a comment\n", "test: the configuration is empty."),
        ("- a\n- b\n", "test: expected a mapping (key: value) at the top level, found list."),
        ("just text\n", "test: expected a mapping (key: value) at the top level, found str."),
    ],
)
def test_non_mapping_documents(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_unrecognised_document() -> None:
    found = problems("version: 1.2.1\ncache: true\n")
    assert len(found) == 1
    assert 'top-level keys: "version", "cache"' in found[0]
    assert "endpoints.azureOpenAI" in found[0] and "deployment_config" in found[0]


def test_librechat_file_without_azure_section() -> None:
    assert problems("version: 1.2.1\nendpoints:\n  custom: []\n") == ["endpoints.azureOpenAI: Field required"]


# -- the three librechat-style shapes --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "endpoints:\n  azureOpenAI:\n" + indent(SECTION, 4),
        "azureOpenAI:\n" + indent(SECTION, 2),
        SECTION,
    ],
    ids=["endpoints.azureOpenAI", "azureOpenAI", "groups"],
)
def test_section_shapes_resolve_alike(text: str) -> None:
    config = load(text + "gateway:\n  allowAnonymous: true\n")
    backend = config.routes["gpt-4o"].backends[0]
    assert backend.url("embeddings") == (
        "https://inst.openai.azure.com/openai/deployments/dep/embeddings?api-version=2024-10-21"
    )
    assert config.source == "test"
    assert config.warnings == ()


def test_type_errors_have_paths_and_are_all_reported() -> None:
    found = problems(
        """
        endpoints:
          azureOpenAI:
            groups:
              - group: a
                instanceName: i
                models: {m: true}
              - group: b
                instanceName: 3
                dropParams: top_p
                models:
                  x: "yes"
                  y: {deploymentName: [d]}
                  z:
        gateway:
          allowAnonymous: maybe
          timeouts: {read: 0}
        """
    )
    assert found == [
        "endpoints.azureOpenAI.groups[1].instanceName: Input should be a valid string",
        "endpoints.azureOpenAI.groups[1].dropParams: Input should be a valid list",
        (
            "endpoints.azureOpenAI.groups[1].models.x: "
            "Input should be true or a mapping with deploymentName / version / assistants / baseModel / fitToModel"
        ),
        "endpoints.azureOpenAI.groups[1].models.y.deploymentName: Input should be a valid string",
        (
            "endpoints.azureOpenAI.groups[1].models.z: "
            "Input should be true or a mapping with deploymentName / version / assistants / baseModel / fitToModel"
        ),
        "gateway.allowAnonymous: Input should be a valid boolean",
        "gateway.timeouts.read: Input should be greater than 0",
        # The rules still judge what the schema accepted.
        'Model "m" in group "a" is missing a deploymentName or version.',
    ]


def test_required_fields_and_empty_groups() -> None:
    assert problems("groups: []\n") == ["groups: List should have at least 1 item after validation, not 0"]
    assert problems("groups:\n  - {apiKey: k}\n") == [
        "groups[0].group: Field required",
        "groups[0].models: Field required",
    ]


def test_env_problems_are_reported_with_type_errors() -> None:
    found = problems("groups:\n  - {group: g, apiKey: '${MISSING}', instanceName: 1, models: {a: true}}\n")
    assert found == [
        'Azure configuration environment variable "${MISSING}" was not found.',
        "groups[0].instanceName: Input should be a valid string",
    ]


# -- env references ------------------------------------------------------------------------------


def test_env_references_anywhere_in_strings() -> None:
    config = load(
        """
        groups:
          - group: g
            apiKey: "${KEY}"
            instanceName: "${PREFIX}-eastus"
            deploymentName: "${DEP}"
            version: "${VER}"
            addParams: {user: "team-${TEAM}"}
            models: {gpt-4o: true}
        gateway:
          allowAnonymous: true
          maxBodyBytes: "${MAX}"
        """,
        {
            "KEY": "k",
            "PREFIX": "contoso",
            "DEP": "d",
            "VER": "2024-10-21",
            "TEAM": "x",
            "MAX": "100",
        },
    )
    backend = config.routes["gpt-4o"].backends[0]
    assert backend.base_url == "https://contoso-eastus.openai.azure.com/openai/deployments/d"
    assert backend.headers == (("api-key", "k"),)
    assert backend.add_params == {"user": "team-x"}
    assert config.settings.max_body_bytes == 100


def test_each_missing_variable_is_reported_once_and_empty_counts_as_missing() -> None:
    found = problems(
        """
        groups:
          - {group: a, apiKey: "${KEY}", instanceName: "${A}", deploymentName: d, version: 2024-10-21,
             models: {m: true}}
          - {group: b, apiKey: "${KEY}", instanceName: "${B}", deploymentName: d, version: 2024-10-21,
             models: {n: true}}
        gateway: {allowAnonymous: true}
        """,
        {"A": "a", "KEY": ""},
    )
    assert found == [
        'Azure configuration environment variable "${KEY}" was not found.',
        'Azure configuration environment variable "${B}" was not found.',
    ]


# -- warnings -------------------------------------------------------------------------------------


def test_unknown_keys_are_warnings_with_paths() -> None:
    config = load(
        """
        endpoints:
          azureOpenAI:
            titelModel: gpt-4o
            streamRate: 35
            groups:
              - group: g
                apiKey: k
                instanceName: inst
                deploymentname: oops
                deploymentName: dep
                version: 2024-10-21
                models:
                  gpt-4o: {deploymentName: d, verison: x}
          custom: []
        interface: {privacyPolicy: {openNewTab: true}}
        gateway:
          allowAnonymous: true
          timeout: {read: 5}
        """
    )
    assert config.warnings == (
        'Unknown key "endpoints.azureOpenAI.titelModel" is ignored (did you mean "titleModel"?)',
        'Unknown key "endpoints.azureOpenAI.streamRate" is ignored.',
        'Unknown key "endpoints.azureOpenAI.groups[0].deploymentname" is ignored (did you mean "deploymentName"?)',
        'Unknown key "endpoints.azureOpenAI.groups[0].models.gpt-4o.verison" is ignored (did you mean "version"?)',
        'Unknown key "gateway.timeout" is ignored (did you mean "timeouts"?)',
    )


def test_duplicate_yaml_keys_are_warned() -> None:
    config = load(
        """
        groups:
          - group: g
            apiKey: k
            instanceName: i
            version: 2024-10-21
            models:
              gpt-4o: {deploymentName: first}
              gpt-4o: {deploymentName: second}
        gateway: {allowAnonymous: true}
        """
    )
    assert config.routes["gpt-4o"].backends[0].deployment == "second"
    assert config.warnings == ('Duplicate key "gpt-4o" at line 9: the last value wins.',)


def test_warnings_travel_with_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load("groups:\n  - {group: g, instanceName: i, models: {a: true}, colour: red}\n")
    assert caught.value.warnings == ['Unknown key "groups[0].colour" is ignored.']


# -- a real librechat.yaml -----------------------------------------------------------------------------


def test_full_librechat_yaml_ignores_other_sections() -> None:
    # GROQ_API_KEY, MISTRAL_API_KEY and TTS_API_KEY are LibreChat's business: not set, no error.
    config = load_config({"CONFIG_PATH": str(FIXTURES / "librechat_full.yaml"), **FULL_ENV})
    assert config.warnings == ()
    urls = {model: route.backends[0].url("chat/completions") for model, route in config.routes.items()}
    east = "https://contoso-eastus.openai.azure.com/openai/deployments"
    sweden = "https://contoso-sweden.openai.azure.com/openai/deployments"
    assert urls == {  # in file order
        "gpt-4o": f"{east}/gpt-4o-prod/chat/completions?api-version=2024-10-21",
        "gpt-4o-mini": f"{east}/gpt-4o-mini/chat/completions?api-version=2024-10-21",
        "text-embedding-3-small": f"{east}/embeddings-small/chat/completions?api-version=2024-02-01",
        "gpt-4-turbo": f"{sweden}/gpt-4-turbo/chat/completions?api-version=2024-05-01-preview",
        "mistral-large": "https://Mistral-large-contoso-serverless.eastus2.inference.ai.azure.com/v1/chat/completions",
    }
    assert list(urls) == ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "gpt-4-turbo", "mistral-large"]
    assert config.routes["gpt-4-turbo"].backends[0].assistants
    assert [(k.name, k.key, k.models) for k in config.settings.api_keys] == [
        ("librechat", "gw-librechat", None),
        ("batch-jobs", "gw-batch", frozenset({"text-embedding-3-small"})),
    ]
    assert (config.settings.connect_timeout, config.settings.read_timeout) == (5.0, 120.0)
    assert config.settings.max_body_bytes == 10 * 1024 * 1024
    assert config.source == f"file:{FIXTURES / 'librechat_full.yaml'}"
    assert not config.passthrough


# -- stulzq env mode -------------------------------------------------------------------------------


def test_stulzq_env_mode() -> None:
    config = load_config(
        {
            "AZURE_OPENAI_ENDPOINT": "https://docs-test-001.openai.azure.com/",
            "AZURE_OPENAI_API_VER": "2024-06-01",
            "AZURE_OPENAI_MODEL_MAPPER": " gpt-4 = gpt4-dep ,gpt-3.5-turbo=gpt-35-turbo, ",
        }
    )
    assert config.source == "env:AZURE_OPENAI_ENDPOINT"
    assert list(config.routes) == ["gpt-4", "gpt-3.5-turbo"]
    backend = config.routes["gpt-3.5-turbo"].backends[0]
    assert backend.group == "default"
    assert backend.auth == "passthrough" and backend.headers == ()
    assert backend.url("chat/completions") == (
        "https://docs-test-001.openai.azure.com/openai/deployments/gpt-35-turbo/chat/completions?api-version=2024-06-01"
    )
    assert config.passthrough
    assert config.settings == type(config.settings)()


def test_stulzq_env_mode_default_api_version() -> None:
    config = load_config(
        {"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com", "AZURE_OPENAI_MODEL_MAPPER": "gpt-4=gpt-4"}
    )
    assert config.routes["gpt-4"].backends[0].api_version == "2024-02-01"


def test_stulzq_env_mode_malformed_mapper() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            {
                "AZURE_OPENAI_ENDPOINT": "docs-test-001.openai.azure.com",
                "AZURE_OPENAI_MODEL_MAPPER": "gpt-4=gpt-4,gpt-35-turbo,=dep,gpt-x=,a=b=c,gpt-4=other",
            }
        )
    assert caught.value.problems == [
        "AZURE_OPENAI_ENDPOINT is not an http:// or https:// URL (e.g. https://my-resource.openai.azure.com/).",
        'AZURE_OPENAI_MODEL_MAPPER entry "gpt-35-turbo" is not of the form openai-model=azure-deployment.',
        'AZURE_OPENAI_MODEL_MAPPER entry "=dep" is not of the form openai-model=azure-deployment.',
        'AZURE_OPENAI_MODEL_MAPPER entry "gpt-x=" is not of the form openai-model=azure-deployment.',
        'AZURE_OPENAI_MODEL_MAPPER entry "a=b=c" is not of the form openai-model=azure-deployment.',
        'Duplicate model name detected: "gpt-4". Model names must be unique across groups.',
    ]


def test_stulzq_env_mode_api_version_must_be_an_api_version() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            {
                "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com",
                "AZURE_OPENAI_MODEL_MAPPER": "gpt-4=gpt-4",
                "AZURE_OPENAI_API_VER": "2024-02",
            }
        )
    assert caught.value.problems == [f'AZURE_OPENAI_API_VER "2024-02" is not an api-version: {API_VERSION_FORMS}']


def test_stulzq_env_mode_without_mapper() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com/"})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("AZURE_OPENAI_MODEL_MAPPER is empty")


# -- stulzq config.yaml ------------------------------------------------------------------------------


def test_stulzq_config_file_from_readme() -> None:
    text = (FIXTURES / "stulzq_config.yaml").read_text()
    found = problems(text)
    assert len(found) == 1 and "open relay" in found[0]

    config = load(text + "gateway:\n  apiKeys: [{name: app, key: gw-app}]\n")
    assert config.warnings == ()
    urls = {model: route.backends[0].url("completions") for model, route in config.routes.items()}
    assert urls == {
        "text-davinci-003": "https://xxx-east-us.openai.azure.com/openai/deployments/xxx/completions?api-version=2024-02-01",
        "gpt-3.5-turbo": "https://yyy.openai.azure.com/openai/deployments/yyy/completions?api-version=2024-02-01",
        "text-embedding-ada-002": "https://zzzz.openai.azure.com/openai/deployments/zzzz/completions?api-version=2024-02-01",
    }
    backend = config.routes["gpt-3.5-turbo"].backends[0]
    assert backend.group == "yyy.openai.azure.com"
    assert backend.auth == "api-key" and backend.headers == (("api-key", "11111111111"),)


def test_stulzq_config_file_grouping_passthrough_and_defaults() -> None:
    config = load(
        """
        api_base: "/openai"
        deployment_config:
          - {deployment_name: d1, model_name: m1, endpoint: "https://a.openai.azure.com/"}
          - {deployment_name: d2, model_name: m2, endpoint: "https://a.openai.azure.com", api_version: 2024-06-01}
          - {deployment_name: d3, model_name: m3, endpoint: "https://a.openai.azure.com/", api_key: "${A_KEY}"}
        gateway: {allowAnonymous: true}
        """,
        {"A_KEY": "secret"},
    )
    got = {
        model: (route.backends[0].group, route.backends[0].auth, route.backends[0].api_version)
        for model, route in config.routes.items()
    }
    assert got == {
        "m1": ("a.openai.azure.com", "passthrough", "2024-02-01"),
        "m2": ("a.openai.azure.com", "passthrough", "2024-06-01"),
        "m3": ("a.openai.azure.com-2", "api-key", "2024-02-01"),
    }
    assert config.warnings == ('api_base "/openai" is ignored: the gateway serves the OpenAI API under /v1.',)


def test_stulzq_config_file_problems() -> None:
    found = problems(
        """
        deployment_config:
          - {deployment_name: d1, model_name: m1, endpoint: "a.openai.azure.com"}
          - {deployment_name: d2, model_name: m2, endpoint: "https://b.openai.azure.com/"}
          - {deployment_name: d3, model_name: m2, endpoint: "https://c.openai.azure.com/"}
          - {deployment_name: d4, endpoint: "https://c.openai.azure.com/"}
        """
    )
    assert found == [
        "deployment_config[3].model_name: Field required",
        "deployment_config[0].endpoint is not an http:// or https:// URL.",
        'Duplicate model name detected: "m2". Model names must be unique across groups.',
    ]
    found = problems(
        """
        deployment_config:
          - {deployment_name: d1, model_name: m1, endpoint: "a.openai.azure.com"}
          - {deployment_name: d2, model_name: m2, endpoint: "https://b.openai.azure.com/"}
          - {deployment_name: d3, model_name: m2, endpoint: "https://c.openai.azure.com/"}
        gateway:
          apiKeys: [{name: app, key: gw-app}]
        """
    )
    assert found == [
        "deployment_config[0].endpoint is not an http:// or https:// URL.",
        'Duplicate model name detected: "m2". Model names must be unique across groups.',
        (
            'Group "b.openai.azure.com" has no apiKey, so the caller\'s key would be sent to Azure (passthrough); '
            "with gateway.apiKeys set, callers present gateway keys, and those would be forwarded to Azure. "
            "Give these groups an apiKey, or remove gateway.apiKeys so callers use their own Azure keys."
        ),
    ]

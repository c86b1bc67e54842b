"""The model router: which route serves a public model id, and every name the configuration gives a model."""

from __future__ import annotations

import pytest

from core.config.load import load_config_text
from core.errors import GatewayError
from core.routing import ModelRouter
from tests.support.standard import SECRETS, STANDARD_CONFIG


def router() -> ModelRouter:
    config = load_config_text(STANDARD_CONFIG, {**SECRETS, "SIM_URL": "http://127.0.0.1:9"}, "test")
    return ModelRouter(config.routes)


def test_the_names_are_the_public_ids_and_the_deployments_serving_them() -> None:
    assert router().names() == {
        "gpt-4o", "gpt-4o-dep", "gpt-4o-mini", "gpt-4o-mini-dep", "text-embedding-3-small", "embed-dep",
        "gpt-tuned", "tuned-dep", "gpt-instruct", "instruct-dep", "mistral-large",
    }  # fmt: skip


def test_a_model_is_routed_by_its_public_id_and_listed_in_the_configurations_order() -> None:
    models = router()
    assert models.route("gpt-4o").backends[0].deployment == "gpt-4o-dep"
    assert models.models() == [
        "gpt-4o",
        "gpt-4o-mini",
        "text-embedding-3-small",
        "gpt-tuned",
        "gpt-instruct",
        "mistral-large",
    ]


def test_a_deployment_name_is_no_public_id_to_route_by() -> None:
    with pytest.raises(GatewayError) as refused:
        router().route("gpt-4o-dep")
    assert refused.value.status == 404

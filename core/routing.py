"""Routing: a public model id -> the ModelRoute (backends) that serves it."""

from __future__ import annotations

from core.config.model import ModelRoute
from core.errors import model_not_found


class ModelRouter:
    def __init__(self, routes: dict[str, ModelRoute]) -> None:
        self._routes = routes

    def route(self, model: str) -> ModelRoute:
        route = self._routes.get(model)
        if route is None:
            raise model_not_found(model)
        return route

    def models(self) -> list[str]:
        return list(self._routes)

    def names(self) -> frozenset[str]:
        """Every name the configuration gives a model: the public ids, and the deployments serving them."""
        deployments = {b.deployment for route in self._routes.values() for b in route.backends if b.deployment}
        return frozenset(self._routes) | deployments

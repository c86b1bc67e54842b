"""aoai-gateway core: an OpenAI-compatible gateway to Azure OpenAI.

A call flows through one layer after another, each importing only from those below it:
the HTTP surface (api.py's route table, endpoints.py) hands each request to an Exchange
(exchange.py), which admits it (auth.py, budgets.py), has the endpoint's handler read and
route it (deployments.py, or resources/ for the resource-scoped APIs; routing.py: model ->
backends), translates it for the backend that serves it (translation/), sends it through the
upstream layer (upstream/: selection, health, failover and the pooled transport, which knows
nothing of OpenAI) and relays the answer (relay.py). Below them all: the resolved configuration
(config/) and the OpenAI-shaped errors (errors.py).
"""

"""One Azure simulator per region, as the pool tests put several Azure resources behind one model."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from azure_sim import AzureSimulator


@contextlib.contextmanager
def regional_simulators(regions: Iterable[str], key: str, deployments: set[str]) -> Iterator[dict[str, AzureSimulator]]:
    """A started simulator per region (named after it), each taking `key` and serving `deployments`; stopped after."""
    started = {
        region: AzureSimulator(api_keys={key}, deployments=deployments, name=region).start() for region in regions
    }
    try:
        yield started
    finally:
        for simulator in started.values():
            simulator.stop()

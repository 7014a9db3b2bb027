from collections.abc import Iterator

import httpx
import ollama
import pytest

from simulator.config import SimConfig
from simulator.harness import SimulatorThread


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimConfig()) as running:
        yield running


@pytest.fixture
def client(sim: SimulatorThread) -> Iterator[ollama.Client]:
    with ollama.Client(host=sim.url) as ollama_client:
        yield ollama_client


@pytest.fixture
def http(sim: SimulatorThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as http_client:
        yield http_client

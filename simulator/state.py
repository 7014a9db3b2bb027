"""The running simulator's mutable state: config, counters, parallel gates, loaded models."""

import random
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from simulator.catalog import Catalog, Model
from simulator.config import SimConfig
from simulator.gate import Gate

DEFAULT_KEEP_ALIVE = 300.0
# What Ollama reports for `keep_alive` < 0 (never expires): far in the future.
FOREVER = datetime(2318, 8, 13, 12, 0, tzinfo=UTC).timestamp()


@dataclass
class SimStats:
    requests: int = 0
    active: int = 0
    waiting: int = 0
    cancelled: int = 0
    completed: int = 0
    errors: int = 0
    max_active_seen: int = 0

    def enter_active(self) -> None:
        self.active += 1
        self.max_active_seen = max(self.max_active_seen, self.active)

    def reset(self) -> None:
        """Zero the tallies; `active`/`waiting` are live gauges and stay true."""
        self.requests = self.cancelled = self.completed = self.errors = 0
        self.max_active_seen = self.active

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class LoadedModel:
    model: Model
    expires_at: float
    context_length: int

    def ps_entry(self) -> dict[str, Any]:
        expires = datetime.fromtimestamp(self.expires_at, tz=UTC)
        return {
            **self.model.tags_entry(),
            "expires_at": expires.isoformat().replace("+00:00", "Z"),
            "size_vram": self.model.meta.size,
            "context_length": self.context_length,
        }


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.catalog = Catalog(config.models)
        self.stats = SimStats()
        self.rng = random.Random(config.seed)  # noqa: S311 - fault injection, not secrets
        self._gates: dict[str, Gate] = {}
        self._loaded: dict[str, LoadedModel] = {}

    def update_config(self, changes: dict[str, Any]) -> SimConfig:
        self.config = SimConfig.model_validate({**self.config.model_dump(), **changes})
        self.catalog = Catalog(self.config.models)
        if "seed" in changes:
            self.rng.seed(self.config.seed)
        for gate in self._gates.values():
            gate.wake()
        return self.config

    def reset(self) -> None:
        self.stats.reset()
        self.rng.seed(self.config.seed)

    def gate(self, model: Model) -> Gate:
        key = model.ref.key
        if (gate := self._gates.get(key)) is None:
            gate = self._gates[key] = Gate(lambda: self.config.num_parallel)
        return gate

    def should_fail(self) -> bool:
        rate = self.config.fail_rate
        return rate > 0 and self.rng.random() < rate

    def load(self, model: Model, *, keep_alive: float | None, num_ctx: Any) -> bool:
        """Mark `model` loaded (cloud models never are); True if it was not loaded before."""
        if model.ref.cloud:
            return False
        now = time.time()
        previous = self._loaded.get(model.ref.key)
        fresh = previous is None or previous.expires_at <= now
        seconds = DEFAULT_KEEP_ALIVE if keep_alive is None else keep_alive
        context = num_ctx if isinstance(num_ctx, int) and num_ctx > 0 else model.meta.num_ctx
        self._loaded[model.ref.key] = LoadedModel(
            model=model,
            expires_at=FOREVER if seconds < 0 else now + seconds,
            context_length=context,
        )
        return fresh

    def unload(self, model: Model) -> None:
        self._loaded.pop(model.ref.key, None)

    def loaded(self) -> list[LoadedModel]:
        now = time.time()
        for key in [k for k, m in self._loaded.items() if m.expires_at <= now]:
            del self._loaded[key]
        return list(self._loaded.values())

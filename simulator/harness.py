"""Running the simulator in a background thread on a free port (tests, benchmarks).

with SimulatorThread(SimConfig(token_delay_ms=5)) as sim:
    client = ollama.Client(host=sim.url)
"""

from simulator.config import SimConfig
from simulator.server import create_app
from simulator.state import SimState
from simulator.threaded import ServerThread


class SimulatorThread(ServerThread):
    name = "Ollama simulator"

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1") -> None:
        self.app = create_app(config or SimConfig())
        super().__init__(self.app, host)

    @property
    def state(self) -> SimState:
        """The live state; read it from another thread for assertions only."""
        state: SimState = self.app.state.sim
        return state

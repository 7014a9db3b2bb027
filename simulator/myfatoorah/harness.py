"""Running the MyFatoorah double in a background thread on a free port (tests, e2e).

with MyFatoorahDouble(MyFatoorahConfig(webhook_url=receiver.url)) as mf:
    httpx.post(f"{mf.url}/v2/ExecutePayment", headers=mf.headers, json={...})
"""

from simulator.myfatoorah.config import MyFatoorahConfig
from simulator.myfatoorah.server import app_state, create_app, gate
from simulator.myfatoorah.state import MyFatoorahState
from simulator.threaded import ServerThread


class MyFatoorahDouble(ServerThread):
    name = "MyFatoorah double"

    def __init__(self, config: MyFatoorahConfig | None = None, host: str = "127.0.0.1") -> None:
        self.app = create_app(config or MyFatoorahConfig())
        super().__init__(gate(self.app), host)

    @property
    def state(self) -> MyFatoorahState:
        """The live state; every method of it is safe to call from the test's thread."""
        return app_state(self.app)

    @property
    def headers(self) -> dict[str, str]:
        """What a merchant sends with every `/v2` call."""
        return {"Authorization": f"Bearer {self.state.config.token}"}

    def start(self) -> str:
        url = super().start()
        self.state.server_url = url
        return url

    def stop(self) -> None:
        super().stop()
        self.state.webhooks.stop()

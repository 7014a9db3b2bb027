"""`resayil sim-ollama`: serve the Ollama simulator (the lead attaches it to the CLI group)."""

import json

import click

from simulator.config import SimConfig
from simulator.server import serve


@click.command(name="sim-ollama")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=11434, show_default=True, type=int)
@click.option("--token-delay-ms", default=0.0, show_default=True, type=float)
@click.option("--tokens", default=32, show_default=True, type=int, help="Default answer length.")
@click.option("--num-parallel", default=4, show_default=True, type=int)
@click.option("--fail-rate", default=0.0, show_default=True, type=float)
def sim_ollama(
    host: str, port: int, token_delay_ms: float, tokens: int, num_parallel: int, fail_rate: float
) -> None:
    """Serve a faithful Ollama HTTP test double."""
    config = SimConfig(
        token_delay_ms=token_delay_ms, tokens=tokens, num_parallel=num_parallel, fail_rate=fail_rate
    )
    click.echo(json.dumps({"simulator": "ollama", "url": f"http://{host}:{port}"}))
    serve(config, host, port)

"""`resayil sim-myfatoorah`: serve the MyFatoorah double (attached to the CLI in resayil/cli.py)."""

import json

import click

from simulator.myfatoorah.config import load_config
from simulator.myfatoorah.server import serve


@click.command(name="sim-myfatoorah")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8010, show_default=True, type=int)
@click.option("--token", default=None, help="The bearer token to accept [test-token].")
@click.option("--webhook-url", default=None, help="Where to POST webhooks [none].")
@click.option("--webhook-secret", default=None, help="The webhook secret [test-webhook-secret].")
@click.option("--webhook-version", default=None, type=click.Choice(["1", "2"]), help="[2]")
@click.option("--public-url", default=None, help="The base URL browsers use [http://HOST:PORT].")
def sim_myfatoorah(
    host: str,
    port: int,
    token: str | None,
    webhook_url: str | None,
    webhook_secret: str | None,
    webhook_version: str | None,
    public_url: str | None,
) -> None:
    """Serve a faithful MyFatoorah v2 API test double (MYFATOORAH_SIM_* set the defaults)."""
    config = load_config(
        token=token,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        webhook_version=int(webhook_version) if webhook_version else None,
        public_url=public_url,
    )
    url = f"http://{host}:{port}"
    public = config.public_url or url
    click.echo(json.dumps({"simulator": "myfatoorah", "url": url, "public_url": public}))
    serve(config, host, port)

"""The error handlers every route has, on a real app: what a failure the route did not
catch becomes."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from portal.exceptions import install_error_handlers


def test_a_database_that_refuses_connections_is_a_503_not_a_500() -> None:
    app = FastAPI()
    install_error_handlers(app)
    engine = create_engine(f"sqlite:////nonexistent-{uuid.uuid4().hex}/resayil.db")

    @app.get("/v1/anything")
    def anything() -> dict[str, str]:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {}

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/anything")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "database_unavailable")

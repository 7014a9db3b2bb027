"""The served OpenAPI schema describes what the API really answers."""

from __future__ import annotations

from typing import Any

from portal.config import PortalSettings
from portal.main import create_app


def schema() -> dict[str, Any]:
    # Building the schema starts nothing: the lifespan (Redis, database) does not run.
    return create_app(PortalSettings()).openapi()


def test_no_422_is_advertised_because_validation_errors_are_400() -> None:
    spec = schema()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_chat_documents_its_body_errors_and_security() -> None:
    chat = schema()["paths"]["/v1/chat/completions"]["post"]
    body = chat["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ChatCompletionRequest"}
    assert set(chat["responses"]) == {"200", "400", "401", "402", "403", "404", "429", "502", "503"}
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    assert chat["security"] == [{"HTTPBearer": []}]
    error = chat["responses"]["402"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorResponse"}
    assert [p["name"] for p in chat["parameters"]] == ["x-resayil-failover"]


def test_models_routes_are_documented() -> None:
    paths = schema()["paths"]
    assert set(paths["/v1/models"]["get"]["responses"]) == {"200", "401"}
    assert set(paths["/v1/models/{model_id}"]["get"]["responses"]) == {"200", "401", "404"}


def test_the_account_api_is_documented_and_the_pages_are_not() -> None:
    paths = schema()["paths"]
    account_api = {path: ops for path, ops in paths.items() if path.startswith("/api/")}
    assert {
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/account",
        "/api/account/password",
        "/api/account/language",
        "/api/keys",
        "/api/keys/{key_id}",
        "/api/usage",
        "/api/billing/subscription",
        "/api/billing/orders",
        "/api/billing/orders/{order_id}",
        "/api/billing/invoices/{number}",
    } <= set(account_api)
    # Public (the offers) or authenticated by MyFatoorah's signature (the webhook).
    unauthenticated = ("/api/auth/register", "/api/auth/login", "/api/admin", "/api/billing/offers")
    for path, operations in account_api.items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                assert "400" in operation["responses"], (method, path)
            if path.startswith(unauthenticated) or path == "/api/billing/webhook":
                continue
            assert "401" in operation["responses"], (method, path)
            assert {"SessionToken": []} in operation["security"], (method, path)
            assert {"SessionCookie": []} in operation["security"], (method, path)
    assert set(paths["/api/keys/{key_id}"]["delete"]["responses"]) >= {"204", "401", "404"}
    webhook = paths["/api/billing/webhook"]["post"]
    assert set(webhook["responses"]) >= {"200", "400", "401"}
    assert "security" not in webhook
    invoice = paths["/api/billing/invoices/{number}"]["get"]
    assert "application/pdf" in invoice["responses"]["200"]["content"]
    pages = ("/", "/login", "/register", "/dashboard", "/keys", "/language", "/pricing")
    for page in (*pages, "/billing", "/billing/checkout", "/billing/callback"):
        assert page not in paths

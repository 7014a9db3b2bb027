"""Wire shapes of the JSON account API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Language = Literal["en", "ar"]


class RegisterIn(BaseModel):
    email: str = Field(max_length=320, examples=["owner@example.com"])
    phone: str = Field(
        max_length=40,
        description="Any common format; Kuwait (+965) is assumed without a country code. "
        "Arabic-Indic digits are accepted. Stored in E.164.",
        examples=["+965 5000 1234"],
    )
    password: str = Field(max_length=256, description="At least 8 characters")
    language: Language = "en"


class LoginIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)


class SessionOut(BaseModel):
    """A session: send `token` as `Authorization: Bearer <token>`, or use the cookie that
    was set and send `csrf_token` as `X-CSRF-Token` on every change."""

    token: str
    csrf_token: str
    expires_in_s: int = Field(description="Idle lifetime; every use extends it")


class PlanOut(BaseModel):
    code: str
    name: str
    requests_per_minute: int
    status: Literal["active", "ending", "expired", "open_ended"] = Field(
        description="`expired`: the API answers 402 `subscription_expired` until renewed"
    )
    expires_at: datetime | None = Field(description="When the paid period ends (null: never)")


class BalanceOut(BaseModel):
    remaining: int = Field(description="Credits left")
    total_granted: int = Field(description="Credits ever granted or purchased")


class AccountOut(BaseModel):
    account_id: int
    email: str
    phone: str
    language: Language
    plan: PlanOut | None
    balance: BalanceOut


class PasswordIn(BaseModel):
    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256, description="At least 8 characters")


class LanguageIn(BaseModel):
    language: Language

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class KeyIn(BaseModel):
    label: str = Field(max_length=100, examples=["production"])


class KeyOut(BaseModel):
    id: int
    label: str
    prefix: str = Field(description="The first 12 characters of the key")
    created_at: datetime
    last_used_at: datetime | None


class CreatedKeyOut(BaseModel):
    id: int
    label: str
    prefix: str
    created_at: datetime
    key: str = Field(description="The full key: shown this once, never stored")

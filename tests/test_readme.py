"""The README documents every setting the processes read from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from dispatcher.config import DispatcherSettings
from portal.config import PortalSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("settings", [PortalSettings, DispatcherSettings])
def test_every_setting_is_in_the_configuration_table(settings: type[BaseSettings]) -> None:
    missing = [name.upper() for name in settings.model_fields if f"`{name.upper()}`" not in README]
    assert missing == []


def test_readme_starts_with_the_two_commands() -> None:
    head = README.split("\n## ", 1)[0]
    assert "make run" in head and "make test" in head

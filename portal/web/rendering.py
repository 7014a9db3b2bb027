"""Jinja2 templates, one environment per language with its gettext catalog installed."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from portal.web import i18n
from schema.money import format_kwd

if TYPE_CHECKING:
    from portal.web.visitor import Visitor

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def kwd(fils: int) -> str:
    """An amount in KWD with its three decimals (fils are integers, never floats)."""
    return format_kwd(fils)


def thousands(value: int) -> str:
    return f"{value:,}"


def short_time(moment: datetime | None, timezone: ZoneInfo) -> str:
    return moment.astimezone(timezone).strftime("%Y-%m-%d %H:%M") if moment else ""


def short_date(moment: datetime | None, timezone: ZoneInfo) -> Markup:
    """The date, isolated left-to-right: inside an Arabic sentence the bidi algorithm
    would otherwise show 2026-12-09 as 09-12-2026."""
    if moment is None:
        return Markup("")
    return Markup('<bdi dir="ltr">{}</bdi>').format(
        moment.astimezone(timezone).strftime("%Y-%m-%d")
    )


class Renderer:
    def __init__(self, *, public_base_url: str, timezone: str) -> None:
        self.timezone = ZoneInfo(timezone)
        self.environments = {
            language: self._environment(language, public_base_url) for language in i18n.LANGUAGES
        }

    def _environment(self, language: str, public_base_url: str) -> Environment:
        environment = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(["html"]),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        environment.install_gettext_translations(  # type: ignore[attr-defined]
            i18n.translations(language), newstyle=True
        )
        environment.globals.update(
            language=language,
            direction=i18n.direction(language),
            other_language="ar" if language == "en" else "en",
            base_url=public_base_url.rstrip("/"),
        )
        environment.filters.update(
            kwd=kwd,
            thousands=thousands,
            short_time=functools.partial(short_time, timezone=self.timezone),
            short_date=functools.partial(short_date, timezone=self.timezone),
        )
        return environment

    @staticmethod
    def translator(language: str) -> Callable[[str], str]:
        return i18n.translations(language).gettext

    def render(
        self,
        request: Request,
        visitor: Visitor,
        template: str,
        context: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
    ) -> HTMLResponse:
        page = self.environments[visitor.language].get_template(template)
        html = page.render(
            request=request,
            visitor=visitor,
            csrf_token=visitor.csrf_token,
            path=request.url.path,
            **(context or {}),
        )
        response = HTMLResponse(html, status_code=status_code)
        visitor.apply_cookies(response)
        return response

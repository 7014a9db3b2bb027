"""Every message the portal can show exists in Arabic, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from portal.web import i18n

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def extracted_messages() -> set[str]:
    """What `make i18n` extracts: `N_`/`_`/`gettext` in Python, `_` in templates."""
    found: set[str] = set()
    method_map = [("portal/**.py", "python"), ("portal/templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "N_": None}
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=method_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_the_arabic_catalog_translates_every_message() -> None:
    with i18n.catalog_path("ar").open("rb") as source:
        catalog = read_po(source, locale="ar")
    translated = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
    wanted = extracted_messages()
    assert len(wanted) > 100  # the extraction really looked at the templates
    missing = sorted(wanted - set(translated))
    assert missing == [], "run `make i18n` and translate these"
    for message in wanted:
        assert sorted(PLACEHOLDER.findall(message)) == sorted(
            PLACEHOLDER.findall(str(translated[message]))
        ), message


def test_messages_render_in_arabic() -> None:
    arabic = i18n.translations("ar")
    assert arabic.gettext("Log in") != "Log in"
    assert re.search(r"[\u0600-\u06FF]", arabic.gettext("The email or password is incorrect."))
    assert i18n.translations("en").gettext("Log in") == "Log in"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("ar-KW,ar;q=0.9,en;q=0.8", "ar"),
        ("en-GB,en;q=0.9,ar;q=0.8", "en"),
        ("fr-FR,fr;q=0.9,ar;q=0.5", "ar"),
        ("fr, de", None),
        ("en;q=0.2, ar;q=0.7", "ar"),
        ("ar;q=0, en", "en"),
        ("", None),
    ],
)
def test_accept_language_picks_the_best_supported(header: str, language: str | None) -> None:
    assert i18n.from_accept_language(header) == language


def test_direction() -> None:
    assert i18n.direction("ar") == "rtl" and i18n.direction("en") == "ltr"

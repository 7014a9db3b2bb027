"""`N_` marks a message for translation where it is written; pages translate it later.

Services stay free of request languages: they raise errors with English messages
marked `N_(...)`, which the catalog extraction (`make i18n`) collects, and a page
shows `gettext(message)` in the visitor's language.
"""

from __future__ import annotations


def N_(message: str) -> str:
    return message

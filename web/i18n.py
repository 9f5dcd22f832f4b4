"""Khmer and English: gettext catalogs for pages and for the strings the scripts show.

Catalogs are ``web/translations/<lang>/LC_MESSAGES/messages.po`` (Babel). They are compiled in
memory at start-up, so there is no build step and no binary in the repository. Messages whose
source locations include a ``.js`` file are also served to the browser as ``/i18n/<lang>.json``.
"""

from __future__ import annotations

import contextvars
import gettext
import io
from dataclasses import dataclass
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
DEFAULT_LOCALE = "en"
LOCALES = {"en": "English", "km": "ខ្មែរ"}
LOCALE_COOKIE = "cabinet_lang"


@dataclass(frozen=True)
class Catalog:
    locale: str
    translations: gettext.NullTranslations
    script_messages: dict[str, str]


def _load(locale: str) -> Catalog:
    path = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not path.exists():
        return Catalog(locale, gettext.NullTranslations(), {})
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    script: dict[str, str] = {}
    for message in catalog:
        if message.id and message.string and not message.fuzzy and isinstance(message.id, str) \
                and any(str(location[0]).endswith(".js") for location in message.locations):
            script[message.id] = str(message.string)
    return Catalog(locale, gettext.GNUTranslations(buffer), script)


class Catalogs:
    def __init__(self) -> None:
        self.by_locale = {locale: _load(locale) for locale in LOCALES}

    def get(self, locale: str) -> Catalog:
        return self.by_locale.get(locale, self.by_locale[DEFAULT_LOCALE])


_current: contextvars.ContextVar[gettext.NullTranslations] = contextvars.ContextVar(
    "cabinet_translations", default=gettext.NullTranslations()
)


def activate(catalog: Catalog) -> None:
    _current.set(catalog.translations)


def gettext_(message: str) -> str:
    return _current.get().gettext(message)


def ngettext_(singular: str, plural: str, n: int) -> str:
    return _current.get().ngettext(singular, plural, n)


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page language: ?lang=, then the remembered choice, then the browser's preference."""
    for choice in (query, cookie):
        if choice in LOCALES:
            return choice
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LOCALES:
            return tag
    return DEFAULT_LOCALE

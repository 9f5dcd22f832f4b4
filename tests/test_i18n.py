"""Khmer and English pages from gettext catalogs, switchable and remembered."""

from __future__ import annotations

from babel.messages.pofile import read_po

from harness import Client, LiveServer
from web.i18n import TRANSLATIONS_DIR, negotiate


def test_every_message_has_a_khmer_translation() -> None:
    with (TRANSLATIONS_DIR / "km" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="km")
    untranslated = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert untranslated == []
    with (TRANSLATIONS_DIR / "messages.pot").open("rb") as handle:
        template = read_po(handle)
    assert {m.id for m in template if m.id} <= {m.id for m in catalog if m.id}, "run pybabel update"


def test_negotiation() -> None:
    assert negotiate(None, None, None) == "en"
    assert negotiate(None, None, "km-KH,km;q=0.9,en;q=0.8") == "km"
    assert negotiate(None, "km", "en") == "km"
    assert negotiate("en", "km", "km") == "en"
    assert negotiate("fr", "xx", "de") == "en"


async def test_switching_language_is_remembered(live_server: LiveServer) -> None:
    async with Client(live_server.url) as client:
        status, body = await client.page("/login")
        assert '<html lang="en">' in body and ">Log in<" in body
        status, body = await client.page("/login?lang=km")
        assert '<html lang="km">' in body and "ពាក្យសម្ងាត់" in body
        status, body = await client.page("/login")
        assert '<html lang="km">' in body  # the choice is kept in a cookie
        await client.login("governor")
        status, body = await client.page("/")
        assert "សូមស្វាគមន៍" in body and "សម័យប្រជុំគណៈរដ្ឋមន្ត្រី" in body


async def test_script_catalog_and_vendor_library(live_server: LiveServer) -> None:
    async with Client(live_server.url) as client:
        async with client.http.get("/i18n/km.json") as response:
            assert response.status == 200 and isinstance(await response.json(), dict)
        async with client.http.get("/i18n/xx.json") as response:
            assert response.status == 404
        async with client.http.get("/vendor/socket.io.esm.min.js") as response:
            assert response.status == 200 and "javascript" in response.headers["Content-Type"]
        async with client.http.get("/vendor/../../etc/passwd") as response:
            assert response.status == 404


async def test_meeting_page_shows_the_agenda_in_both_languages(live_server: LiveServer) -> None:
    async with Client(live_server.url) as client:
        await client.login("governor")
        status, body = await client.page("/meetings/1")
        assert status == 200 and "Draft sub-decree on provincial flood preparedness" in body
        assert "Ministry of Water Resources and Meteorology" in body and "30 min" in body
        status, body = await client.page("/meetings/1?lang=km")
        assert "របៀបវារៈ" in body and "ក្រសួងធនធានទឹក និងឧតុនិយម" in body and "30 នាទី" in body

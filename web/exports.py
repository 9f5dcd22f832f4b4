"""Exports of a meeting's record: the attendance register as CSV, and the minutes as PDF.

PDF: WeasyPrint renders the same HTML as the printable page, through Pango and HarfBuzz, so Khmer
(a complex script: subscript consonants, reordered vowels) is shaped correctly with the system's
Khmer fonts (Debian fonts-khmeros). It is maintained, and it avoids keeping a second layout in code.
"""

from __future__ import annotations

import csv
import io
from typing import Any

#: A cell starting with one of these is a formula to spreadsheet programs (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ["office_code", "office", "office_km", "person", "status", "intervals", "first_arrival",
           "last_departure", "minutes_present", "late_minutes", "left_early_minutes", "excused"]


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _intervals(row: dict[str, Any]) -> str:
    return "; ".join(f"{start}/{end}" for start, end in row.get("intervals", []))


def register_csv(attendance: dict[str, Any]) -> bytes:
    """One row per site, then one per person of that site; UTF-8 with a BOM so Excel reads Khmer."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for site in attendance["sites"]:
        office = site["office"] or {}
        base = [office.get("code", ""), office.get("name_en", ""), office.get("name_km", "")]
        rows = [base + ["", site["status"], _intervals(site), site["first_arrival"], site["last_departure"],
                        site["minutes_present"], site["late_minutes"], site["left_early_minutes"],
                        site["excused"] or ""]]
        for person in site["people"]:
            rows.append(base + [person["name"], "present" if person["intervals"] else "absent", _intervals(person),
                                person["first_arrival"], person["last_departure"], person["minutes_present"],
                                person["late_minutes"], person["left_early_minutes"], person["excused"] or ""])
        for row in rows:
            writer.writerow([safe_cell(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def html_to_pdf(html: str) -> bytes:
    """Blocking (run it in a thread): the printable page as PDF."""
    from weasyprint import HTML

    def no_fetching(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise ValueError(f"the minutes PDF loads no external resource ({url[:40]})")

    return HTML(string=html, base_url=None, url_fetcher=no_fetching).write_pdf()  # type: ignore[no-any-return]

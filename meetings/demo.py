"""Demo data: every office of the Kingdom's cabinet network, one account per role, two meetings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from meetings.models import MeetingKind, Office, OfficeKind, Person
from meetings.policy import Caller
from meetings.services import Services

PHNOM_PENH_TZ = ZoneInfo("Asia/Phnom_Penh")
DEMO_PASSWORD = "demo-password-2026"

# (code, kind, English name, Khmer name). Provinces use ISO 3166-2:KH codes.
OFFICES: list[tuple[str, OfficeKind, str, str]] = [
    ("OCM", OfficeKind.SECRETARIAT, "Office of the Council of Ministers", "ទីស្ដីការគណៈរដ្ឋមន្ត្រី"),
    ("KH-12", OfficeKind.CAPITAL, "Phnom Penh Capital", "រាជធានីភ្នំពេញ"),
    ("KH-1", OfficeKind.PROVINCE, "Banteay Meanchey", "បន្ទាយមានជ័យ"),
    ("KH-2", OfficeKind.PROVINCE, "Battambang", "បាត់ដំបង"),
    ("KH-3", OfficeKind.PROVINCE, "Kampong Cham", "កំពង់ចាម"),
    ("KH-4", OfficeKind.PROVINCE, "Kampong Chhnang", "កំពង់ឆ្នាំង"),
    ("KH-5", OfficeKind.PROVINCE, "Kampong Speu", "កំពង់ស្ពឺ"),
    ("KH-6", OfficeKind.PROVINCE, "Kampong Thom", "កំពង់ធំ"),
    ("KH-7", OfficeKind.PROVINCE, "Kampot", "កំពត"),
    ("KH-8", OfficeKind.PROVINCE, "Kandal", "កណ្ដាល"),
    ("KH-9", OfficeKind.PROVINCE, "Koh Kong", "កោះកុង"),
    ("KH-10", OfficeKind.PROVINCE, "Kratie", "ក្រចេះ"),
    ("KH-11", OfficeKind.PROVINCE, "Mondulkiri", "មណ្ឌលគិរី"),
    ("KH-13", OfficeKind.PROVINCE, "Preah Vihear", "ព្រះវិហារ"),
    ("KH-14", OfficeKind.PROVINCE, "Prey Veng", "ព្រៃវែង"),
    ("KH-15", OfficeKind.PROVINCE, "Pursat", "ពោធិ៍សាត់"),
    ("KH-16", OfficeKind.PROVINCE, "Ratanakiri", "រតនគិរី"),
    ("KH-17", OfficeKind.PROVINCE, "Siem Reap", "សៀមរាប"),
    ("KH-18", OfficeKind.PROVINCE, "Preah Sihanouk", "ព្រះសីហនុ"),
    ("KH-19", OfficeKind.PROVINCE, "Stung Treng", "ស្ទឹងត្រែង"),
    ("KH-20", OfficeKind.PROVINCE, "Svay Rieng", "ស្វាយរៀង"),
    ("KH-21", OfficeKind.PROVINCE, "Takeo", "តាកែវ"),
    ("KH-22", OfficeKind.PROVINCE, "Oddar Meanchey", "ឧត្ដរមានជ័យ"),
    ("KH-23", OfficeKind.PROVINCE, "Kep", "កែប"),
    ("KH-24", OfficeKind.PROVINCE, "Pailin", "ប៉ៃលិន"),
    ("KH-25", OfficeKind.PROVINCE, "Tbong Khmum", "ត្បូងឃ្មុំ"),
    ("MOI", OfficeKind.MINISTRY, "Ministry of Interior", "ក្រសួងមហាផ្ទៃ"),
    ("MOD", OfficeKind.MINISTRY, "Ministry of National Defence", "ក្រសួងការពារជាតិ"),
    ("MFAIC", OfficeKind.MINISTRY, "Ministry of Foreign Affairs and International Cooperation",
     "ក្រសួងការបរទេស និងសហប្រតិបត្តិការអន្តរជាតិ"),
    ("MEF", OfficeKind.MINISTRY, "Ministry of Economy and Finance", "ក្រសួងសេដ្ឋកិច្ច និងហិរញ្ញវត្ថុ"),
    ("MOH", OfficeKind.MINISTRY, "Ministry of Health", "ក្រសួងសុខាភិបាល"),
    ("MOEYS", OfficeKind.MINISTRY, "Ministry of Education, Youth and Sport", "ក្រសួងអប់រំ យុវជន និងកីឡា"),
    ("MAFF", OfficeKind.MINISTRY, "Ministry of Agriculture, Forestry and Fisheries",
     "ក្រសួងកសិកម្ម រុក្ខាប្រមាញ់ និងនេសាទ"),
    ("MPWT", OfficeKind.MINISTRY, "Ministry of Public Works and Transport", "ក្រសួងសាធារណការ និងដឹកជញ្ជូន"),
    ("MOJ", OfficeKind.MINISTRY, "Ministry of Justice", "ក្រសួងយុត្តិធម៌"),
    ("MOC", OfficeKind.MINISTRY, "Ministry of Commerce", "ក្រសួងពាណិជ្ជកម្ម"),
    ("MOINFO", OfficeKind.MINISTRY, "Ministry of Information", "ក្រសួងព័ត៌មាន"),
    ("MPTC", OfficeKind.MINISTRY, "Ministry of Posts and Telecommunications", "ក្រសួងប្រៃសណីយ៍ និងទូរគមនាគមន៍"),
    ("MOP", OfficeKind.MINISTRY, "Ministry of Planning", "ក្រសួងផែនការ"),
    ("MRD", OfficeKind.MINISTRY, "Ministry of Rural Development", "ក្រសួងអភិវឌ្ឍន៍ជនបទ"),
    ("MOE", OfficeKind.MINISTRY, "Ministry of Environment", "ក្រសួងបរិស្ថាន"),
    ("MOWRAM", OfficeKind.MINISTRY, "Ministry of Water Resources and Meteorology",
     "ក្រសួងធនធានទឹក និងឧតុនិយម"),
    ("MME", OfficeKind.MINISTRY, "Ministry of Mines and Energy", "ក្រសួងរ៉ែ និងថាមពល"),
    ("MOT", OfficeKind.MINISTRY, "Ministry of Tourism", "ក្រសួងទេសចរណ៍"),
    ("MLVT", OfficeKind.MINISTRY, "Ministry of Labour and Vocational Training",
     "ក្រសួងការងារ និងបណ្តុះបណ្តាលវិជ្ជាជីវៈ"),
    ("MOSVY", OfficeKind.MINISTRY, "Ministry of Social Affairs, Veterans and Youth Rehabilitation",
     "ក្រសួងសង្គមកិច្ច អតីតយុទ្ធជន និងយុវនីតិសម្បទា"),
    ("MOWA", OfficeKind.MINISTRY, "Ministry of Women's Affairs", "ក្រសួងកិច្ចការនារី"),
    ("MCFA", OfficeKind.MINISTRY, "Ministry of Culture and Fine Arts", "ក្រសួងវប្បធម៌ និងវិចិត្រសិល្បៈ"),
    ("MOCR", OfficeKind.MINISTRY, "Ministry of Cults and Religion", "ក្រសួងធម្មការ និងសាសនា"),
    ("MISTI", OfficeKind.MINISTRY, "Ministry of Industry, Science, Technology and Innovation",
     "ក្រសួងឧស្សាហកម្ម វិទ្យាសាស្ត្រ បច្ចេកវិទ្យា និងនវានុវត្តន៍"),
    ("MLMUPC", OfficeKind.MINISTRY, "Ministry of Land Management, Urban Planning and Construction",
     "ក្រសួងរៀបចំដែនដី នគរូបនីយកម្ម និងសំណង់"),
    ("MCS", OfficeKind.MINISTRY, "Ministry of Civil Service", "ក្រសួងមុខងារសាធារណៈ"),
    ("MR-1", OfficeKind.MILITARY_REGION, "Military Region 1", "ភូមិភាគទី១"),
    ("MR-2", OfficeKind.MILITARY_REGION, "Military Region 2", "ភូមិភាគទី២"),
    ("MR-3", OfficeKind.MILITARY_REGION, "Military Region 3", "ភូមិភាគទី៣"),
    ("MR-4", OfficeKind.MILITARY_REGION, "Military Region 4", "ភូមិភាគទី៤"),
    ("MR-5", OfficeKind.MILITARY_REGION, "Military Region 5", "ភូមិភាគទី៥"),
    ("MR-SPECIAL", OfficeKind.MILITARY_REGION, "Special Military Region", "ភូមិភាគពិសេស"),
    ("RCAF-HC", OfficeKind.MILITARY_COMMAND, "RCAF High Command", "អគ្គបញ្ជាការដ្ឋាន កងយោធពលខេមរភូមិន្ទ"),
    ("RCAF-ARMY", OfficeKind.MILITARY_COMMAND, "Royal Cambodian Army Command", "បញ្ជាការដ្ឋានកងទ័ពជើងគោក"),
    ("RCAF-NAVY", OfficeKind.MILITARY_COMMAND, "Royal Cambodian Navy Command", "បញ្ជាការដ្ឋានកងទ័ពជើងទឹក"),
    ("RCAF-AIR", OfficeKind.MILITARY_COMMAND, "Royal Cambodian Air Force Command", "បញ្ជាការដ្ឋានកងទ័ពអាកាស"),
    ("GRK", OfficeKind.MILITARY_COMMAND, "Royal Gendarmerie Command", "បញ្ជាការដ្ឋានកងរាជអាវុធហត្ថ"),
]


@dataclass(frozen=True)
class DemoAccount:
    username: str
    full_name: str
    office_code: str
    role: str


ACCOUNTS: list[DemoAccount] = [
    DemoAccount("secretariat", "Sok Dara (Secretariat)", "OCM", "secretariat"),
    DemoAccount("chair", "Chan Sophal (Chair)", "OCM", "chair"),
    DemoAccount("governor", "Keo Sreymom (Governor of Siem Reap)", "KH-17", "delegate"),
    DemoAccount("commander", "Meas Vuthy (Commander, Military Region 4)", "MR-4", "commander"),
    DemoAccount("observer", "Ly Channary (Observer, Ministry of Information)", "MOINFO", "observer"),
]


AGENDA = [
    ("Adoption of the minutes of the previous session", "OCM", 5),
    ("Draft sub-decree on provincial flood preparedness", "MOWRAM", 30),
    ("Rural road maintenance budget, second tranche", "MEF", 25),
    ("Report of the Siem Reap provincial administration", "KH-17", 15),
]


def next_friday_0800(now: dt.datetime) -> dt.datetime:
    local = now.astimezone(PHNOM_PENH_TZ)
    days = (4 - local.weekday()) % 7 or 7
    day = (local + dt.timedelta(days=days)).date()
    return dt.datetime.combine(day, dt.time(8, 0), tzinfo=PHNOM_PENH_TZ)


async def is_empty(services: Services) -> bool:
    async with services.db.read() as session:
        offices = await session.scalar(select(func.count(Office.id)))
        people = await session.scalar(select(func.count(Person.id)))
    return not offices and not people


async def load(services: Services, now: dt.datetime | None = None) -> list[DemoAccount]:
    """Load offices, demo accounts and two meetings into an empty database."""
    if not await is_empty(services):
        raise RuntimeError("the database is not empty; demo data is only loaded into an empty database")
    caller = Caller.cli()
    by_code: dict[str, int] = {}
    for code, kind, name_en, name_km in OFFICES:
        office = await services.offices.create(caller, code=code, kind=kind.value, name_en=name_en, name_km=name_km)
        by_code[code] = office.id
    people: dict[str, int] = {}
    for account in ACCOUNTS:
        person = await services.people.create(
            caller, username=account.username, full_name=account.full_name,
            office_id=by_code[account.office_code], roles=[account.role], password=DEMO_PASSWORD,
        )
        people[account.username] = person.id
    start = next_friday_0800(now or dt.datetime.now(dt.UTC))
    governments = [oid for code, oid in by_code.items() if code.startswith("KH-") or
                   dict((c, k) for c, k, _, _ in OFFICES)[code] is OfficeKind.MINISTRY]
    # The weekly session is a real series (every Friday 08:00 Phnom Penh time); its first occurrence is
    # created first, so it is meeting 1, and carries the demo agenda.
    series = await services.schedule.create_series(
        caller, title="Weekly Cabinet Session", kind=MeetingKind.CABINET_SESSION.value,
        host_office_id=by_code["OCM"], weekday=4, local_time="08:00", duration_minutes=180,
        timezone="Asia/Phnom_Penh", starts_on=start.date(),
        invited_office_ids=governments, invited_person_ids=[people["chair"], people["observer"]],
        now=now or dt.datetime.now(dt.UTC))
    session = (await services.schedule.occurrences(caller, series.id))[0]
    for title, presenter, minutes in AGENDA:
        await services.agenda.add(caller, session.id, title=title, presenter_office_id=by_code[presenter],
                                  planned_minutes=minutes)
    briefing_start = start - dt.timedelta(days=1, hours=-2)
    await services.meetings.create(
        caller, title="Military Region 4 Security Briefing", kind=MeetingKind.BRIEFING.value,
        host_office_id=by_code["MR-4"], starts_at=briefing_start,
        ends_at=briefing_start + dt.timedelta(hours=1),
        invited_office_ids=[by_code["RCAF-HC"], by_code["KH-22"]],
    )
    return ACCOUNTS

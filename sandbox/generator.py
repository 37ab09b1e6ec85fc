"""Deterministic, realistically messy contact data for both sandboxes.

The same people appear on both sides with the differences a real two-way sync meets: email case
(Salesforce side) and stray whitespace (HubSpot side, as an import leaves it); duplicates (Salesforce
allows several contacts per email; HubSpot does not, so its duplicates are the same person under a second
address); emails Salesforce accepts but HubSpot rejects (non-IANA TLDs); missing emails and last names;
values longer than Salesforce's field lengths; unicode, quotes and backslashes in names; and field values
that drifted apart on one side. Every record carries explicit created/modified timestamps inside a
window ending at `now`.
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from faker import Faker

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "ja_JP", "pl_PL", "pt_BR"]
TRICKY_NAMES = ["O'Brien", "D'Angelo", 'The "Boss"', "Back\\slash", "Zoë-Ann", "Øyvind", "José María", "Nguyễn"]
BAD_TLDS = ["local", "corp", "internal", "lan"]


@dataclass(frozen=True)
class Mess:
    """Share of records given each kind of mess (per side unless said otherwise)."""

    overlap: float = 0.5  # people present on both sides
    email_case: float = 0.3  # of shared people: different case on the Salesforce side
    email_whitespace: float = 0.05  # of shared people: stray whitespace on the HubSpot side (a raw import)
    drift: float = 0.3  # of shared people: title/phone differ between the sides
    duplicates: float = 0.03
    invalid_email: float = 0.02  # Salesforce side only: TLDs HubSpot rejects
    missing_email: float = 0.02
    missing_lastname: float = 0.03  # HubSpot side only: Salesforce requires LastName
    overlong: float = 0.01  # values past Salesforce's lengths (Email 80, FirstName 40, LastName 80, Title 128)
    tricky_name: float = 0.03

    @classmethod
    def valid_only(cls) -> Mess:
        """Only the mess both CRMs accept (email case and whitespace, drift, unicode names): no duplicates,
        invalid or missing emails, missing last names or over-long values, so every contact can sync."""
        return cls(duplicates=0.0, invalid_email=0.0, missing_email=0.0, missing_lastname=0.0, overlong=0.0)


@dataclass
class Person:
    first: str
    last: str
    email: str
    phone: str
    mobile: str
    title: str
    company: str


@dataclass
class Generated:
    salesforce: list[dict[str, Any]]
    hubspot: list[dict[str, Any]]
    counts: Counter = field(default_factory=Counter)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum()) or "contact"


class _Maker:
    def __init__(self, seed: int, now: datetime, window: timedelta, mess: Mess) -> None:
        self.rng = random.Random(seed)
        self.now, self.window, self.mess = now, window, mess
        self.serial = 0
        self.counts: Counter = Counter()
        self.pools = _pools(seed)

    def pick(self, locale: str, kind: str) -> str:
        return self.rng.choice(self.pools[locale][kind])

    def chance(self, share: float, label: str) -> bool:
        hit = self.rng.random() < share
        if hit:
            self.counts[label] += 1
        return hit

    def person(self) -> Person:
        self.serial += 1
        loc = self.rng.choice(LOCALES)
        first, last = self.pick(loc, "first"), self.pick(loc, "last")
        if self.chance(self.mess.tricky_name, "tricky_name"):
            first = self.rng.choice(TRICKY_NAMES)
        email = f"{_slug(first)}.{_slug(last)}.{self.serial}@{self.pick(loc, 'domain')}"
        phone, mobile = self.pick(loc, "phone"), self.pick(loc, "phone")
        return Person(first, last, email, phone, mobile, self.pick(loc, "job"), self.pick(loc, "company"))

    def stamps(self) -> tuple[str, str]:
        modified = self.now - self.window * self.rng.random()
        created = modified - timedelta(days=self.rng.uniform(0, 700))
        return _iso(created), _iso(modified)

    def salesforce(self, p: Person, shared: bool) -> dict[str, Any]:
        email: str | None = p.email
        if shared and self.chance(self.mess.email_case, "sf_email_case"):
            email = _mixed_case(p.email, self.rng)
        if not shared and self.chance(self.mess.invalid_email, "sf_invalid_email"):
            email = f"{p.email.rsplit('.', 1)[0]}.{self.rng.choice(BAD_TLDS)}"
        if self.chance(self.mess.missing_email, "sf_missing_email"):
            email = None
        created, modified = self.stamps()
        return {
            "Email": email,
            "FirstName": p.first,
            "LastName": p.last,
            "Phone": p.phone,
            "MobilePhone": p.mobile,
            "Title": p.title,
            "AccountName": p.company,
            "CreatedDate": created,
            "LastModifiedDate": modified,
        }

    def hubspot(self, p: Person, shared: bool) -> dict[str, Any]:
        props = {
            "email": p.email,
            "firstname": p.first,
            "lastname": p.last,
            "phone": p.phone,
            "mobilephone": p.mobile,
            "jobtitle": p.title,
            "company": p.company,
        }
        if shared and self.chance(self.mess.email_whitespace, "hs_email_whitespace"):
            props["email"] = f" {p.email}\t"
        if shared and self.chance(self.mess.drift, "drift"):
            props["jobtitle"] = f"Senior {p.title}"
            props["phone"] = self.pick(self.rng.choice(LOCALES), "phone")
        if self.chance(self.mess.missing_lastname, "hs_missing_lastname"):
            props["lastname"] = ""
        if self.chance(self.mess.overlong, "hs_overlong"):
            props["firstname"] = (p.first + " ") * 12
            props["jobtitle"] = f"{p.title} " * 30
        if not shared and self.chance(self.mess.missing_email, "hs_missing_email"):
            props["email"] = ""
        created, modified = self.stamps()
        return {"properties": props, "createdAt": created, "updatedAt": modified}


def generate(
    contacts: int,
    seed: int,
    now: datetime,
    window: timedelta = timedelta(minutes=15),
    mess: Mess | None = None,
    shared_people: int | None = None,
) -> Generated:
    """`contacts` records per side; the same arguments always give the same records.

    `shared_people` people are on both sides (at most `contacts`); default: the `mess.overlap` share.
    """
    maker = _Maker(seed, now, window, mess or Mess())
    count = round(contacts * maker.mess.overlap) if shared_people is None else min(shared_people, contacts)
    shared = [maker.person() for _ in range(count)]
    sf = [maker.salesforce(p, True) for p in shared]
    hs = [maker.hubspot(p, True) for p in shared]
    while len(sf) < contacts:
        if sf and maker.chance(maker.mess.duplicates, "sf_duplicate"):
            twin = dict(maker.rng.choice(sf))
            twin["Email"] = _mixed_case(twin["Email"], maker.rng) if twin["Email"] else None
            twin["Phone"] = maker.pick(maker.rng.choice(LOCALES), "phone")
            sf.append(twin)
        else:
            sf.append(maker.salesforce(maker.person(), False))
    while len(hs) < contacts:
        if hs and maker.chance(maker.mess.duplicates, "hs_duplicate"):
            twin = maker.rng.choice(hs)
            record = maker.hubspot(maker.person(), False)
            record["properties"].update({k: twin["properties"][k] for k in ("firstname", "lastname", "company")})
            hs.append(record)
        else:
            hs.append(maker.hubspot(maker.person(), False))
    maker.counts["shared"] = len(shared)
    return Generated(sf, hs, maker.counts)


def _pools(seed: int, size: int = 400) -> dict[str, dict[str, list[str]]]:
    """Per-locale value pools drawn once from Faker, so a person's name, phone and company share a locale
    and 200k records take seconds, not minutes."""
    pools = {}
    for offset, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed * 1000 + offset)
        pools[locale] = {
            "first": [fake.first_name() for _ in range(size)],
            "last": [fake.last_name() for _ in range(size)],
            "phone": [fake.phone_number() for _ in range(size)],
            "job": [fake.job() for _ in range(size)],
            "company": [fake.company() for _ in range(size)],
            "domain": [fake.free_email_domain() for _ in range(size // 4)]
            + [fake.domain_name() for _ in range(size // 4)],
        }
    return pools


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _mixed_case(email: str, rng: random.Random) -> str:
    local, _, domain = email.partition("@")
    return "".join(ch.upper() if rng.random() < 0.5 else ch for ch in local) + "@" + domain.upper()

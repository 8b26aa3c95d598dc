"""The made-up people of ``nurture demo``: who they are, why sales lost them, how they read.

Everything is drawn from one seeded ``random.Random``, so a seed gives the same workspace
every time. Addresses are under ``.example`` (RFC 2606: never a real domain), and every
person carries the traits that decide how they react to an email: how interested they are,
whether Apple Mail's privacy proxy or Gmail's image proxy stands between them and the
pixel, and whether their company's mail scanner clicks every link before they do.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = ["REPS", "DemoPerson", "people"]

FIRST = [
    "Ana",
    "Bo",
    "Chidi",
    "Dana",
    "Elif",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kavya",
    "Liam",
    "Mara",
    "Nils",
    "Olu",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tomas",
    "Uma",
    "Viktor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zofia",
    "Aisha",
    "Bruno",
    "Carla",
    "Diego",
    "Emma",
    "Felix",
    "Gabriel",
    "Hana",
    "Ivan",
    "Julia",
    "Kenji",
    "Lena",
    "Mateo",
    "Nora",
    "Oscar",
    "Paula",
    "Rafael",
    "Sofia",
    "Theo",
    "Vera",
    "Will",
    "Yara",
    "Zane",
    "Amir",
    "Bianca",
    "Colm",
    "Daria",
    "Eitan",
    "Fatima",
    "Goran",
    "Helga",
    "Idris",
    "Jana",
    "Kai",
]
LAST = [
    "Lima",
    "Okafor",
    "Nguyen",
    "Reyes",
    "Kaya",
    "Haddad",
    "Lindqvist",
    "Tanaka",
    "Moreau",
    "Becker",
    "Iyer",
    "Walsh",
    "Costa",
    "Berg",
    "Adeyemi",
    "Sharma",
    "Murphy",
    "Romero",
    "Karimi",
    "Novak",
    "Rao",
    "Petrov",
    "Zhang",
    "Alvarez",
    "Demir",
    "Quartermaine",
    "Bello",
    "Rossi",
    "Duarte",
    "Fischer",
    "Laurent",
    "Meyer",
    "Schmidt",
    "Kowalski",
    "Silva",
    "Haas",
    "Olsen",
    "Park",
    "Ito",
    "Jensen",
    "Brennan",
    "Castillo",
    "Dubois",
    "Ferreira",
    "Gallo",
    "Horvat",
    "Ivanova",
    "Jovanovic",
]
FIRST_WORD = [
    "Northwind",
    "Bluebird",
    "Cedar",
    "Harbor",
    "Summit",
    "Lumen",
    "Ridge",
    "Copper",
    "Atlas",
    "Fjord",
    "Meridian",
    "Orbit",
    "Pioneer",
    "Quarry",
    "Sable",
    "Tidal",
    "Vertex",
    "Willow",
    "Yonder",
    "Zephyr",
    "Granite",
    "Juniper",
    "Kestrel",
    "Lattice",
]
SECOND_WORD = [
    "Logistics",
    "Health",
    "Foods",
    "Robotics",
    "Media",
    "Systems",
    "Analytics",
    "Freight",
    "Energy",
    "Labs",
    "Retail",
    "Insurance",
    "Bank",
    "Studios",
    "Software",
    "Clinics",
    "Outdoor",
    "Hotels",
    "Pharma",
    "Works",
]
TITLES = (
    "Head of Operations",
    "VP Finance",
    "Operations Manager",
    "CFO",
    "Director of Analytics",
    "IT Manager",
    "COO",
    "Procurement Lead",
    "Data Team Lead",
    "Revenue Operations Manager",
)
PLACES = (  # (country, time zone, weight)
    ("US", "America/New_York", 5),
    ("US", "America/Chicago", 3),
    ("US", "America/Los_Angeles", 4),
    ("CA", "America/Toronto", 2),
    ("GB", "Europe/London", 4),
    ("DE", "Europe/Berlin", 3),
    ("FR", "Europe/Paris", 2),
    ("NL", "Europe/Amsterdam", 2),
    ("ES", "Europe/Madrid", 1),
    ("AU", "Australia/Sydney", 1),
)
REPS = (  # the sales team in the made-up CRM (not users of this app)
    "dana@crm.example",
    "jonas@crm.example",
    "priya@crm.example",
    "sam@crm.example",
)
SEGMENTS = (  # (why sales lost them, share)
    ("price", 0.4),
    ("timing", 0.35),
    ("after_demo", 0.25),
)


@dataclass(frozen=True)
class DemoPerson:
    """A prospect as the CRM sends them (``fields``), when, and how they read email."""

    fields: dict[str, Any]
    arrives_at: datetime
    segment: str
    interest: float  # 0..1: how likely they open, click, visit pricing and reply
    apple_mail: bool  # Apple Mail Privacy Protection fetches every pixel on delivery
    gmail: bool  # Gmail's image proxy fetches the pixel when they open
    scanned: bool  # a security gateway clicks every link within seconds of delivery

    @property
    def email(self) -> str:
        return str(self.fields["email"])


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _segment_fields(rng: random.Random, segment: str, arrives_at: datetime) -> dict[str, Any]:
    lost_at = arrives_at - timedelta(days=rng.randint(1, 20))
    if segment == "price":
        return {
            "status": "closed_lost",
            "lost_reason": rng.choice(("price", "price", "budget")),
            "lost_at": lost_at,
            "deal_size": rng.choice((6, 9, 12, 18, 24, 36, 48, 75, 120)) * 1000,
        }
    if segment == "timing":
        if rng.random() < 0.5:
            return {"status": "not_ready"}
        return {
            "status": "closed_lost",
            "lost_reason": rng.choice(("timing", "no_decision")),
            "lost_at": lost_at,
            "deal_size": rng.choice((9, 15, 24, 30, 60)) * 1000,
        }
    return {
        "status": "closed_lost",
        "lost_reason": rng.choice(("went_dark", "went_dark", "no_response")),
        "lost_at": lost_at,
        "deal_size": rng.choice((12, 18, 30, 45, 90)) * 1000,
        "attributes": {
            "demo_date": (lost_at - timedelta(days=rng.randint(5, 30))).date().isoformat()
        },
    }


def _arrival(rng: random.Random, start: datetime, days: int) -> datetime:
    """A backlog on the first morning, then a few a day as deals are marked lost."""
    day = 0 if rng.random() < 0.2 else rng.randint(1, max(1, days - 1))
    return start + timedelta(days=day, hours=rng.randint(8, 18), minutes=rng.randint(0, 59))


def people(
    seed: int, count: int, start: datetime, days: int, owners: tuple[str, ...] = REPS
) -> list[DemoPerson]:
    """``count`` prospects arriving over ``days`` from ``start``, in arrival order (some
    still in their first emails at the end). Same arguments, same people."""
    rng = random.Random(seed)
    companies = [f"{a} {b}" for a in FIRST_WORD for b in SECOND_WORD]
    rng.shuffle(companies)
    weights = [w for _, _, w in PLACES]
    out, used = [], set()
    for index in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = companies[index % len(companies)] if rng.random() < 0.9 else rng.choice(companies)
        email = f"{first}.{last}@{_slug(company)}.example".lower()
        if email in used:
            email = email.replace("@", f"{index}@")
        used.add(email)
        segment = rng.choices([s for s, _ in SEGMENTS], [w for _, w in SEGMENTS])[0]
        country, zone, _ = rng.choices(PLACES, weights)[0]
        arrives_at = _arrival(rng, start, days)
        interest = rng.betavariate(1.4, 2.8) * (1.25 if segment == "after_demo" else 1.0)
        apple = rng.random() < 0.35
        fields = {
            "email": email,
            "first_name": first,
            "last_name": last,
            "company": company,
            "title": rng.choice(TITLES),
            "country": country,
            "timezone": zone,
            "owner": rng.choice(owners),
            "source": "crm",
            **_segment_fields(rng, segment, arrives_at),
        }
        out.append(
            DemoPerson(
                fields=fields,
                arrives_at=arrives_at,
                segment=segment,
                interest=min(interest, 1.0),
                apple_mail=apple,
                gmail=not apple and rng.random() < 0.3,
                scanned=rng.random() < 0.08,
            )
        )
    return sorted(out, key=lambda p: (p.arrives_at, p.email))

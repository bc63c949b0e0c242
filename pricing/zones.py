"""The time zone of a CDR's country when it has exactly one (rule 2).

An OCPI CdrLocation has no time zone, only ``country`` (ISO 3166-1 alpha-3). The list of
IANA zones per country comes from tzdata's ``zone.tab`` (shipped in the ``tzdata``
package, read at run time); a country with one zone there has that zone. Germany lists
Europe/Busingen as well, an exclave that keeps the same clock as Europe/Berlin since
1980, so Germany counts as one zone (Europe/Berlin).
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from importlib import resources

#: ISO 3166-1 alpha-3 -> alpha-2 for the countries we roam in (Europe first).
ALPHA3_TO_ALPHA2 = {
    "ALB": "AL", "AND": "AD", "ARE": "AE", "ARG": "AR", "ARM": "AM", "AUS": "AU", "AUT": "AT",
    "AZE": "AZ", "BEL": "BE", "BGR": "BG", "BIH": "BA", "BLR": "BY", "BRA": "BR", "CAN": "CA",
    "CHE": "CH", "CHL": "CL", "CHN": "CN", "COL": "CO", "CYP": "CY", "CZE": "CZ", "DEU": "DE",
    "DNK": "DK", "ESP": "ES", "EST": "EE", "FIN": "FI", "FRA": "FR", "GBR": "GB", "GEO": "GE",
    "GRC": "GR", "HKG": "HK", "HRV": "HR", "HUN": "HU", "IDN": "ID", "IND": "IN", "IRL": "IE",
    "ISL": "IS", "ISR": "IL", "ITA": "IT", "JPN": "JP", "KOR": "KR", "LIE": "LI", "LTU": "LT",
    "LUX": "LU", "LVA": "LV", "MCO": "MC", "MDA": "MD", "MEX": "MX", "MKD": "MK", "MLT": "MT",
    "MNE": "ME", "MYS": "MY", "NLD": "NL", "NOR": "NO", "NZL": "NZ", "PHL": "PH", "POL": "PL",
    "PRT": "PT", "QAT": "QA", "ROU": "RO", "SAU": "SA", "SGP": "SG", "SMR": "SM", "SRB": "RS",
    "SVK": "SK", "SVN": "SI", "SWE": "SE", "THA": "TH", "TUR": "TR", "TWN": "TW", "UKR": "UA",
    "USA": "US", "ZAF": "ZA",
}

#: Countries whose extra zone.tab entries keep the main zone's clock today.
SAME_CLOCK = {"DE": "Europe/Berlin"}


class NoSingleZone(ValueError):
    """The country is unknown or has several time zones: the caller must name one."""


@lru_cache(maxsize=1)
def zones_by_country() -> dict[str, tuple[str, ...]]:
    """alpha-2 -> IANA zones, from tzdata's zone.tab."""
    text = resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    zones: dict[str, list[str]] = defaultdict(list)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) >= 3:
            zones[fields[0]].append(fields[2])
    return {cc: tuple(z) for cc, z in zones.items()}


def zone_for_country(country: str) -> str:
    """The single IANA zone of ``country`` (alpha-3 as in CdrLocation, or alpha-2)."""
    code = country.strip().upper()
    alpha2 = ALPHA3_TO_ALPHA2.get(code, code if len(code) == 2 else None)
    if alpha2 is None:
        raise NoSingleZone(f"country {country!r} is not in our alpha-3 table; give the time zone explicitly")
    if alpha2 in SAME_CLOCK:
        return SAME_CLOCK[alpha2]
    zones = zones_by_country().get(alpha2)
    if not zones:
        raise NoSingleZone(f"country {country!r} has no time zone in tzdata's zone.tab")
    if len(zones) > 1:
        raise NoSingleZone(
            f"country {country!r} has {len(zones)} time zones ({', '.join(zones[:3])}"
            f"{', ...' if len(zones) > 3 else ''}); give the time zone explicitly"
        )
    return zones[0]

"""Parties and contracts: who settles with whom, in which currency, with what tolerances.

A party is identified OCPI-style by country code + party id (``NL*ABC``, credentials
module: ``country_code`` CiString(2), ``party_id`` CiString(3)) and has a role (CPO, EMSP,
HUB). A contract binds one CPO and one eMSP (optionally through a hub) and says:

* ``currency``: the only currency in which CDRs of this pair are settled. A CDR in another
  currency is an error (:class:`~settlement.reconcile.CurrencyMismatch`), never converted.
* ``billing_direction``: ``direct`` (the CPO invoices the eMSP) or ``reverse`` (the eMSP
  self-bills the CPO), OCPI 2.3.0 mod_invoice_reconciliation "Flow and Lifecycle". Money
  flows from eMSP to CPO either way; the direction says who issues the invoice.
* ``vat``: ``from_cdr`` (VAT as in the CDRs' ``incl_vat``), ``rate`` (``vat_rate`` percent
  applied to the statement's net total) or ``reverse_charge`` (no VAT on the statement).
* ``tariff``: the OCPI 2.2.1 Tariff (JSON object) used to re-price a disputed CDR, and the
  ``time_zone`` of its restrictions (a CdrLocation has none, docs/ocpi-pricing.md rule 2).
* tolerances: amount (currency units), energy (kWh), duration (s), start time (s).
* ``billing_period``: ``monthly`` (periods are ``YYYY-MM``).

Contracts load from a JSON or TOML file (:func:`load_contracts`), see
``settlement/examples/contracts.json``.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from settlement.money import minor_unit, to_decimal

_PARTY_RE = re.compile(r"^([A-Za-z]{2})\*?([A-Za-z0-9]{3})$")
_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")


class Role(str, Enum):
    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"


class BillingDirection(str, Enum):
    DIRECT = "direct"
    REVERSE = "reverse"


class VatTreatment(str, Enum):
    FROM_CDR = "from_cdr"
    RATE = "rate"
    REVERSE_CHARGE = "reverse_charge"


class ContractError(ValueError):
    """A contract file or value that does not make sense."""


def party_key(country_code: str, party_id: str) -> str:
    """``NL*ABC``: the OCPI identity as one string (CiString: compared upper-case)."""
    return f"{country_code.upper()}*{party_id.upper()}"


def parse_party(text: str) -> tuple[str, str]:
    """``"NL*ABC"`` (or ``"NLABC"``) -> ``("NL", "ABC")``."""
    m = _PARTY_RE.match(text.strip())
    if not m:
        raise ContractError(f"party {text!r} is not an OCPI identity like NL*ABC")
    return m.group(1).upper(), m.group(2).upper()


def normalise_party(text: str) -> str:
    return party_key(*parse_party(text))


@dataclass(frozen=True)
class Period:
    """A monthly billing period ``[start, end)`` in UTC."""

    label: str
    start: datetime
    end: datetime

    @classmethod
    def parse(cls, label: str) -> "Period":
        m = _PERIOD_RE.match(label.strip())
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise ContractError(f"period {label!r} is not YYYY-MM")
        y, mo = int(m.group(1)), int(m.group(2))
        start = datetime(y, mo, 1, tzinfo=timezone.utc)
        end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=timezone.utc)
        return cls(label.strip(), start, end)


@dataclass(frozen=True)
class Party:
    country_code: str
    party_id: str
    role: Role
    name: str = ""

    @property
    def key(self) -> str:
        return party_key(self.country_code, self.party_id)


@dataclass(frozen=True)
class Tolerances:
    """How far two views of one session may differ and still agree.

    ``amount`` applies to total_cost excl and incl VAT (currency units); ``energy_kwh`` to
    total_energy; ``duration_s`` to end - start; ``start_s`` to start_date_time (used for
    matching by fingerprint). Differences up to and including the tolerance agree.
    """

    amount: Decimal = Decimal("0.01")
    energy_kwh: Decimal = Decimal("0.01")
    duration_s: int = 60
    start_s: int = 120


@dataclass(frozen=True)
class Contract:
    id: str
    cpo: str  # "CC*PID"
    emsp: str  # "CC*PID"
    currency: str
    billing_direction: BillingDirection = BillingDirection.DIRECT
    vat: VatTreatment = VatTreatment.FROM_CDR
    vat_rate: Decimal | None = None
    tariff: Mapping[str, Any] | None = None
    time_zone: str = "UTC"
    tolerances: Tolerances = field(default_factory=Tolerances)
    billing_period: str = "monthly"
    hub: str | None = None

    def __post_init__(self) -> None:
        minor_unit(self.currency)  # raises for an unknown currency
        if self.vat is VatTreatment.RATE and self.vat_rate is None:
            raise ContractError(f"contract {self.id}: vat 'rate' needs vat_rate")
        if self.billing_period != "monthly":
            raise ContractError(f"contract {self.id}: only monthly billing periods are supported")
        if self.cpo == self.emsp:
            raise ContractError(f"contract {self.id}: cpo and emsp are the same party")

    def counterparty(self, party: str) -> str:
        """The other party of this contract, seen from ``party``."""
        party = normalise_party(party)
        if party == self.cpo:
            return self.emsp
        if party == self.emsp:
            return self.cpo
        raise ContractError(f"{party} is not a party of contract {self.id}")

    def involves(self, party: str) -> bool:
        return normalise_party(party) in (self.cpo, self.emsp, self.hub)

    @property
    def issuer(self) -> str:
        """Who issues the invoice: the CPO for direct billing, the eMSP for reverse."""
        return self.cpo if self.billing_direction is BillingDirection.DIRECT else self.emsp

    def to_json(self) -> dict[str, Any]:
        t = self.tolerances
        return {
            "id": self.id, "cpo": self.cpo, "emsp": self.emsp, "hub": self.hub,
            "currency": self.currency, "billing_direction": self.billing_direction.value,
            "vat": self.vat.value, "vat_rate": None if self.vat_rate is None else str(self.vat_rate),
            "tariff": self.tariff, "time_zone": self.time_zone,
            "tolerances": {"amount": str(t.amount), "energy_kwh": str(t.energy_kwh),
                           "duration_s": t.duration_s, "start_s": t.start_s},
            "billing_period": self.billing_period,
        }


@dataclass(frozen=True)
class ContractBook:
    """All parties and contracts, as loaded from a file or the database."""

    parties: tuple[Party, ...]
    contracts: tuple[Contract, ...]

    def between(self, a: str, b: str) -> list[Contract]:
        a, b = normalise_party(a), normalise_party(b)
        return [c for c in self.contracts if {c.cpo, c.emsp} == {a, b}]

    def for_party(self, party: str) -> list[Contract]:
        return [c for c in self.contracts if c.involves(party)]

    def contract_for(self, us: str, partner: str) -> Contract:
        found = self.between(us, partner)
        if not found:
            raise ContractError(f"no contract between {normalise_party(us)} and {normalise_party(partner)}")
        if len(found) > 1:
            raise ContractError(f"{len(found)} contracts between {us} and {partner}: name one with --contract")
        return found[0]

    def get(self, contract_id: str) -> Contract:
        for c in self.contracts:
            if c.id == contract_id:
                return c
        raise ContractError(f"no contract {contract_id!r}")


def _req(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj or obj[key] in (None, ""):
        raise ContractError(f"{where}: missing field {key!r}")
    return obj[key]


def contract_from_json(obj: Mapping[str, Any], where: str = "contract", base: Path | None = None) -> Contract:
    """One contract from its JSON/TOML table (field names as in :meth:`Contract.to_json`)."""
    try:
        tol = obj.get("tolerances") or {}
        tolerances = Tolerances(
            amount=to_decimal(tol.get("amount", "0.01")),
            energy_kwh=to_decimal(tol.get("energy_kwh", "0.01")),
            duration_s=int(tol.get("duration_s", 60)),
            start_s=int(tol.get("start_s", 120)),
        )
        tariff = obj.get("tariff")
        if isinstance(tariff, str):  # a JSON text, or a file (relative to the contracts file)
            if tariff.lstrip().startswith("{"):
                tariff = json.loads(tariff)
            else:
                tariff_path = (base or Path(".")) / tariff
                try:
                    tariff = json.loads(tariff_path.read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError) as exc:
                    raise ContractError(f"{where}: tariff {tariff_path}: {exc}") from None
        if tariff is not None and not isinstance(tariff, Mapping):
            raise ContractError(f"{where}: tariff must be an OCPI Tariff object, a JSON text or a file name")
        cid = str(_req(obj, "id", where))
        return Contract(
            id=cid,
            cpo=normalise_party(_req(obj, "cpo", where)),
            emsp=normalise_party(_req(obj, "emsp", where)),
            hub=normalise_party(obj["hub"]) if obj.get("hub") else None,
            currency=str(_req(obj, "currency", where)).upper(),
            billing_direction=BillingDirection(obj.get("billing_direction", "direct")),
            vat=VatTreatment(obj.get("vat", "from_cdr")),
            vat_rate=None if obj.get("vat_rate") in (None, "") else to_decimal(obj["vat_rate"]),
            tariff=tariff,
            time_zone=str(obj.get("time_zone", "UTC")),
            tolerances=tolerances,
            billing_period=str(obj.get("billing_period", "monthly")),
        )
    except ContractError:
        raise
    except (ValueError, TypeError) as exc:
        raise ContractError(f"{where}: {exc}") from None


def book_from_json(data: Mapping[str, Any], source: str = "contracts", base: Path | None = None) -> ContractBook:
    parties = []
    for i, p in enumerate(data.get("parties") or []):
        where = f"{source}: parties[{i}]"
        cc, pid = parse_party(_req(p, "party", where))
        try:
            role = Role(str(_req(p, "role", where)).upper())
        except ValueError:
            raise ContractError(f"{where}: role must be CPO, EMSP or HUB") from None
        parties.append(Party(cc, pid, role, str(p.get("name", ""))))
    contracts = tuple(
        contract_from_json(c, f"{source}: contracts[{i}]", base) for i, c in enumerate(data.get("contracts") or [])
    )
    ids = [c.id for c in contracts]
    if len(set(ids)) != len(ids):
        raise ContractError(f"{source}: contract ids are not unique")
    return ContractBook(tuple(parties), contracts)


def load_contracts(path: str | Path) -> ContractBook:
    """Parties and contracts from a ``.json`` or ``.toml`` file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ContractError(f"{path}: {exc}") from None
    return book_from_json(data, str(path), path.parent)

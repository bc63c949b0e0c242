"""Helpers for the API tests (unit and integration): apps on a fresh database, keys, partners,
CDR rows built from the spec's example CDR, and a real HTTP server on loopback."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.security import create_api_key, hash_secret, new_token
from chargeledger.settings import Settings
from storage.api_tables import PARTNER_REGISTERED, Partner, PartnerRole
from storage.db import make_engine, make_sessionmaker, upgrade

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ocpi"
OUR = ("NL", "CLG")


def example_cdr() -> dict:
    return json.loads((FIXTURES / "cdr_example.json").read_text(), parse_float=Decimal)


def make_settings(url: str, **overrides) -> Settings:
    values = dict(database_url=url, kafka_bootstrap="127.0.0.1:1", cdr_push_enabled=False,
                  country_code=OUR[0], party_id=OUR[1], health_timeout_s=1.0, report_cache_ttl_s=0)
    values.update(overrides)
    return Settings(**values)


_TEMPLATE: dict[str, Path] = {}


def migrated_sessionmaker(url: str):
    """Sessions on ``url`` at the latest schema. A SQLite file is copied from a database
    migrated once per test run (running every migration per test costs half a second)."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        import shutil
        import tempfile

        if "db" not in _TEMPLATE:
            folder = Path(tempfile.mkdtemp(prefix="cl-api-template-"))
            upgrade(f"sqlite:///{folder / 'template.db'}")
            _TEMPLATE["db"] = folder / "template.db"
        shutil.copyfile(_TEMPLATE["db"], url[len("sqlite:///"):])
    else:
        upgrade(url)
    return make_sessionmaker(make_engine(url))


def add_api_key(sm, role: str = "read", name: str | None = None) -> str:
    with sm() as db:
        key = create_api_key(db, name or f"{role}-key", role)
        db.commit()
        return key


def add_partner(sm, name: str, parties: list[tuple[str, str, str]], *, registered: bool = True,
                cdrs_receiver_url: str | None = None, token_b: str | None = None,
                allow_plain_token: bool = False) -> tuple[int, str]:
    """A partner with agreed (role, country_code, party_id) parties; returns (id, its token)."""
    token = new_token()
    now = datetime.now(timezone.utc)
    with sm() as db:
        p = Partner(name=name, status=PARTNER_REGISTERED if registered else "PENDING",
                    token_hash=hash_secret(token), token_kind="C" if registered else "A",
                    allow_plain_token=allow_plain_token, send_plain_token=False,
                    cdrs_receiver_url=cdrs_receiver_url, token_b=token_b, created_at=now, updated_at=now)
        db.add(p)
        db.flush()
        for role, cc, pid in parties:
            db.add(PartnerRole(partner_id=p.id, role=role, country_code=cc, party_id=pid))
        db.commit()
        return p.id, token


def cdr_json(cdr_id: str, *, emsp: tuple[str, str] = ("DE", "8AA"), start: str = "2026-01-10T10:00:00Z",
             end: str | None = None, last_updated: str | None = None, excl: str = "4.00", incl: str | None = "4.40",
             energy: str = "15.342", currency: str = "EUR", location: str = "LOC1", evse: str = "3256",
             tariff: str = "12", credit_of: str | None = None) -> dict:
    """The spec's example CDR re-issued by us (NL*CLG) with the given figures."""
    cdr = copy.deepcopy(example_cdr())
    cdr["country_code"], cdr["party_id"] = OUR
    cdr["id"] = cdr_id
    cdr["start_date_time"] = start
    cdr["end_date_time"] = end or start
    cdr["charging_periods"][0]["start_date_time"] = start
    cdr["cdr_token"]["country_code"], cdr["cdr_token"]["party_id"] = emsp
    cdr["cdr_location"]["id"] = location
    cdr["cdr_location"]["evse_uid"] = evse
    cdr["currency"] = currency
    cdr["tariffs"][0]["id"] = tariff
    cdr["tariffs"][0]["currency"] = currency
    cdr["charging_periods"][0]["tariff_id"] = tariff
    cdr["total_cost"] = {"excl_vat": Decimal(excl)}
    if incl is not None:
        cdr["total_cost"]["incl_vat"] = Decimal(incl)
    cdr["total_energy"] = Decimal(energy)
    cdr["last_updated"] = last_updated or end or start
    if credit_of:
        cdr["credit"] = True
        cdr["credit_reference_id"] = credit_of
    return cdr


def insert_cdr(db, cdr: dict):
    """Insert a CDR row the way the pipeline does (``storage.models.CdrRecord``)."""
    from schemas.ocpi import Cdr
    from storage.models import CdrRecord

    model = Cdr.model_validate_json(json.dumps(cdr, default=str))
    text = model.model_dump_json()
    import hashlib

    row = CdrRecord(
        country_code=model.country_code, party_id=model.party_id, id=model.id,
        start_date_time=model.start_date_time, end_date_time=model.end_date_time, currency=model.currency,
        total_cost_excl_vat=model.total_cost.excl_vat, total_cost_incl_vat=model.total_cost.incl_vat,
        total_energy=model.total_energy, total_time=model.total_time, total_parking_time=model.total_parking_time,
        credit=bool(model.credit), credit_reference_id=model.credit_reference_id,
        emsp_country_code=model.cdr_token.country_code, emsp_party_id=model.cdr_token.party_id,
        location_id=model.cdr_location.id, evse_uid=model.cdr_location.evse_uid,
        tariff_id=model.tariffs[0].id if model.tariffs else None, last_updated=model.last_updated,
        cdr_json=text, content_hash=hashlib.sha256(text.encode()).hexdigest(), published=True,
    )
    db.add(row)
    db.flush()
    return row


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """A real uvicorn server for ``app`` on 127.0.0.1:``port`` in a background thread."""

    def __init__(self, app, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test HTTP server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class FakePartner:
    """A stand-in OCPI eMSP platform (a real FastAPI app, served by :class:`ServerThread`).

    It accepts requests carrying ``token`` (Base64), serves versions and version details
    with a CDRs receiver, and records the CDRs POSTed to it. ``fail_next`` makes the next
    N CDR POSTs answer HTTP 503.
    """

    def __init__(self, token: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.token = token
        self.seen_auth: list[str] = []
        self.received: list[dict] = []
        self.attempts = 0
        self.fail_next = 0
        self.headers: list[dict] = []
        app = FastAPI()
        base = f"http://127.0.0.1:{self.port}"

        def envelope(data=None, code=1000, status=200, headers=None):
            body = {"status_code": code, "timestamp": "2026-01-01T00:00:00Z"}
            if data is not None:
                body["data"] = data
            return JSONResponse(body, status_code=status, headers=headers)

        def authorized(request: Request) -> bool:
            auth = request.headers.get("authorization", "")
            self.seen_auth.append(auth)
            import base64 as b64

            return auth == "Token " + b64.b64encode(self.token.encode()).decode()

        @app.get("/ocpi/versions")
        def versions(request: Request):
            if not authorized(request):
                return envelope(code=2000, status=401)
            return envelope([{"version": "2.1.1", "url": f"{base}/ocpi/2.1.1"},
                             {"version": "2.2.1", "url": f"{base}/ocpi/2.2.1"}])

        @app.get("/ocpi/2.2.1")
        def details(request: Request):
            if not authorized(request):
                return envelope(code=2000, status=401)
            return envelope({"version": "2.2.1", "endpoints": [
                {"identifier": "credentials", "role": "SENDER", "url": f"{base}/ocpi/2.2.1/credentials"},
                {"identifier": "cdrs", "role": "RECEIVER", "url": f"{base}/ocpi/emsp/2.2.1/cdrs"},
            ]})

        @app.post("/ocpi/emsp/2.2.1/cdrs")
        async def receive(request: Request):
            self.attempts += 1
            if not authorized(request):
                return envelope(code=2000, status=401)
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"detail": "maintenance"}, status_code=503)
            raw = await request.body()
            cdr = json.loads(raw, parse_float=Decimal)
            self.received.append(cdr)
            self.headers.append(dict(request.headers))
            return envelope(status=201, headers={"Location": f"{base}/ocpi/emsp/2.2.1/cdrs/{cdr['id']}"})

        self.credentials_posted: list[dict] = []
        self.token_c = "partner-token-c"

        @app.post("/ocpi/2.2.1/credentials")
        async def credentials(request: Request):
            if not authorized(request):
                return envelope(code=2000, status=401)
            body = json.loads(await request.body())
            self.credentials_posted.append(body)
            self.token = self.token_c  # from now on we accept only token C
            return envelope({"token": self.token_c, "url": f"{base}/ocpi/versions", "roles": [
                {"role": "EMSP", "party_id": "8AA", "country_code": "DE", "business_details": {"name": "DE"}}]})

        self.app = app

    @property
    def versions_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ocpi/versions"

    @property
    def cdrs_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ocpi/emsp/2.2.1/cdrs"

    def serve(self) -> ServerThread:
        return ServerThread(self.app, self.port)

"""Tables of the OCPP-J gateway: registered charge points and the transaction id counter.

* ``gateway_charge_points``: who may connect (OCPP security profile 1: HTTP Basic auth
  with the charge point id as user name). Only a salted password hash is stored.
* ``gateway_counters``: named monotonically increasing counters. The gateway takes
  OCPP 1.6 transaction ids from the ``transaction_id`` counter in blocks (one atomic
  ``UPDATE ... RETURNING`` per block), so ids stay unique across restarts and across
  several gateway processes; ids of a block not used before a restart are skipped,
  never reused.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base
from storage.types import UtcDateTime


class GatewayChargePoint(Base):
    __tablename__ = "gateway_charge_points"

    #: The charge point id as it appears in the URL ``/ocpp/{id}`` and as Basic auth user.
    charge_point_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: ``scrypt$n$r$p$salt_b64$hash_b64`` (see gateway/auth.py).
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)


class GatewayCounter(Base):
    __tablename__ = "gateway_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The next value not yet handed out.
    next_value: Mapped[int] = mapped_column(BigInteger, nullable=False)

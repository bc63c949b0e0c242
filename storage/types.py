"""Column types every table module shares: UTC datetimes, money, quantities, big ids."""

from __future__ import annotations

from datetime import timezone

from sqlalchemy import BigInteger, DateTime, Integer, Numeric, TypeDecorator


class UtcDateTimeType(TypeDecorator):
    """A timezone-aware UTC datetime on both SQLite (which stores no offset) and PostgreSQL.

    Binds aware values converted to UTC (naive values are taken as UTC); returns aware UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


UtcDateTime = UtcDateTimeType()

#: Integer primary keys: BIGINT on PostgreSQL, INTEGER on SQLite (which only autoincrements
#: an INTEGER PRIMARY KEY, the rowid alias).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

#: Money: OCPI prices carry up to 4 decimals; CDR totals are rounded to 4 (ROUND_HALF_UP).
Money = Numeric(18, 4)
#: Energy in kWh (OCPI total_energy), time in hours (OCPI total_time / total_parking_time).
Quantity = Numeric(18, 6)

"""``GET /pipeline/counters``: the stream worker's exact counters (finance API key).

Every input on ``ocpp-events`` ends in exactly one place (DESIGN.md): applied,
dead-lettered with a reason, or counted as a duplicate. The worker keeps the counts in
the ``pipeline_counters`` table, in the same transaction as the effects and the consumed
offsets, so they are exact across crashes (storage/repositories.py ``read_counters``). This
endpoint shows them per consumer group, with the invariant checked; the worker also exports
them as Prometheus metrics (``CHARGELEDGER_METRICS_PORT``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.security import FinanceUser, finance_user, get_db
from storage import repositories as repo
from storage.models import PipelineCounter

router = APIRouter(prefix="/pipeline", tags=["pipeline"])


def _view(counters: dict[str, int]) -> dict:
    accounted = counters["applied"] + counters["dead_lettered"] + counters["duplicates"]
    return {**counters, "invariant_holds": counters["events_in"] == accounted}


@router.get("/counters", summary="events_in = applied + dead_lettered + duplicates, per consumer group")
def pipeline_counters(db: Session = Depends(get_db), user: FinanceUser = Depends(finance_user)) -> dict:
    groups = db.scalars(select(PipelineCounter.consumer_group).distinct().order_by(PipelineCounter.consumer_group))
    by_group = {group: _view(repo.read_counters(db, group)) for group in groups}
    return {"total": _view(repo.read_counters(db)), "consumer_groups": by_group}

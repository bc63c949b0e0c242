"""``chargeledger db upgrade``: bring the configured database to the latest schema."""

from __future__ import annotations

import argparse

from chargeledger.settings import get_settings
from storage.db import upgrade


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chargeledger db", description=__doc__)
    parser.add_argument("action", choices=["upgrade"], help="upgrade: apply every migration")
    parser.add_argument("--url", help="database URL (default: CHARGELEDGER_DATABASE_URL)")
    args = parser.parse_args(argv)
    url = args.url or get_settings().database_url
    upgrade(url)
    print(f"database at {url.split('@')[-1]} is at the latest schema")
    return 0

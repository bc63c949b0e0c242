"""``chargeledger api``: migrate the database, then serve the HTTP API with uvicorn.

``chargeledger api --create-api-key NAME --role admin`` creates a finance API key instead
(printed once; only its hash is stored) - the way to get the first admin key.
"""

from __future__ import annotations

import argparse

from chargeledger.settings import get_settings


def main(argv: list[str]) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="chargeledger api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=settings.api_host, help=f"bind address (default {settings.api_host})")
    parser.add_argument("--port", type=int, default=settings.api_port, help=f"port (default {settings.api_port})")
    parser.add_argument("--no-push", action="store_true", help="do not run the CDR push loop in this process")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--no-access-log", action="store_true",
                        help="do not log every request (uvicorn access log; saves CPU under load)")
    parser.add_argument("--create-api-key", metavar="NAME", help="create a finance API key and exit")
    parser.add_argument("--role", choices=["read", "admin"], default="read", help="role of the new API key")
    args = parser.parse_args(argv)

    from storage.db import make_engine, make_sessionmaker, upgrade

    upgrade(settings.database_url)
    if args.create_api_key:
        from api.security import create_api_key

        engine = make_engine(settings.database_url)
        with make_sessionmaker(engine)() as db:
            key = create_api_key(db, args.create_api_key, args.role)
            db.commit()
        engine.dispose()
        print(key)
        return 0

    import uvicorn

    if args.no_push:
        settings = settings.model_copy(update={"cdr_push_enabled": False})
    if args.workers > 1:
        # Each worker builds its own app from the environment; only one should push.
        import os

        os.environ["CHARGELEDGER_CDR_PUSH_ENABLED"] = "false"
        print("note: with --workers > 1 the push loop is off; run `chargeledger api --port X` once with push")
        uvicorn.run("api.app:app_from_env", host=args.host, port=args.port, workers=args.workers,
                    factory=True, log_level="info", access_log=not args.no_access_log)
        return 0
    from api.app import create_app

    print(f"chargeledger API on http://{args.host}:{args.port} (OpenAPI: /docs, /openapi.json)", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info",
                access_log=not args.no_access_log)
    return 0

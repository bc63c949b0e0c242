"""The one ``chargeledger`` command. Each subcommand lives in the package it belongs to.

A subcommand is registered here as ``name -> "module:function"``; the function takes the
remaining argv (``list[str]``) and returns an exit code. Modules are imported only when
their subcommand runs, so ``chargeledger price`` does not pay for importing faust.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("chargeledger.demo:main", "run the whole pipeline end to end on simulated traffic"),
    "services": ("chargeledger.services:main", "start/stop/status of the local Kafka broker and PostgreSQL"),
    "worker": ("streams.cli:worker_main", "run the stream processor (sessions -> priced CDRs)"),
    "simulate": ("streams.simulate:main", "produce realistic OCPP traffic onto ocpp-events"),
    "replay": ("streams.replay:main", "rebuild sessions and CDRs from the event log and compare"),
    "rerate": ("streams.rerate:main", "re-price sessions after a tariff correction (credit + new CDR)"),
    "db": ("storage.cli:main", "database migrations (upgrade to the latest schema)"),
    "api": ("api.cli:main", "serve the HTTP API (finance reports, OCPI)"),
    "price": ("pricing.cli:price_main", "re-price an OCPI CDR with a tariff"),
    "tariff": ("pricing.cli:tariff_main", "tariff tools (check: lint a tariff)"),
    "reconcile": ("settlement.cli:reconcile_main", "reconcile our CDRs against a partner's"),
    "statement": ("settlement.cli:statement_main", "issue and export settlement statements"),
    "gateway": ("gateway.cli:main", "OCPP-J WebSocket gateway for chargers"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: chargeledger COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'chargeledger COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        from chargeledger import __version__

        print(__version__)
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"chargeledger: unknown command {name!r}\n", file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    target, _ = COMMANDS[name]
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
        func = getattr(module, func_name)
    except (ImportError, AttributeError) as exc:
        print(f"chargeledger: command {name!r} is not available in this build ({exc})", file=sys.stderr)
        return 2
    return int(func(rest) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

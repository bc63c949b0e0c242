"""chargeledger: event-sourced billing and CDR settlement for EV charging."""

__version__ = "0.1.0"

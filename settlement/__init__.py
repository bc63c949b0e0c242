"""Settlement: reconcile roaming CDRs and invoices between parties, and issue statements.

Pure core (no I/O): ``contracts`` (parties, contracts, periods), ``money`` (scaled
integers inside, Decimal at the edges, ISO 4217 minor units), ``frames`` (the CDR frame
layout), ``reconcile`` (the ten classes), ``reprice`` (amount mismatches re-priced with
the tariff engine), ``statements`` (totals, net positions, exports).
Shells: ``imports`` (partner files, validated whole), ``repository`` (the settlement
tables in storage/settlement_tables.py, plus query helpers for the API) and ``cli``
(``chargeledger reconcile`` / ``chargeledger statement``).
"""

"""OCPI 2.2.1 interfaces of chargeledger as a CPO (and as a CDR receiver for partners' CDRs)."""

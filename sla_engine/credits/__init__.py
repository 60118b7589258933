"""Support tickets as credits: the ledger and its plans (pure), their store, the service, the
ticket hook and housekeeping."""

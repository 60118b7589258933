"""Support tickets as credits: the ledger (pure), its storage, the ticket hook, housekeeping."""

"""Bulk ingestion: JSONL import and export, and the HTTP batch of tickets and events.

- `jsonl`: one line of the import format, parsed and checked (pure);
- `credit_books`: accounts' ledgers held in memory while a chunk of lines is planned;
- `chunk_writer`: one chunk of lines written in one transaction (bulk where it can);
- `importer`: the streaming `sla-engine import` (progress marker, rejects file, summary);
- `exporter`: `sla-engine export`, lines in an order a re-import decides credits alike;
- `batch`: `POST /v1/batch`, each item as its single call, in savepoints.
"""

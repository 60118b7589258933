"""Bulk ingestion: JSONL import and export, and the HTTP batch of tickets and events.

- `jsonl`: one line of the import format, parsed and checked (pure);
- `credit_books`: accounts' ledgers held in memory while a chunk of lines is planned;
- `chunk_writer`: one chunk of lines decided and written in one transaction (bulk where it
  can);
- `new_tickets`: the tickets a chunk creates, replayed once each and inserted in bulk;
- `new_ticket_hooks`: the state hooks run once per new ticket, in bulk;
- `bulk_rows`: bulk inserts (`executemany` on SQLite, `COPY` on PostgreSQL);
- `line_results`: a run's counts and rejected lines;
- `importer`: the streaming `sla-engine import` (progress marker, rejects file, summary);
- `exporter`: `sla-engine export`, lines in an order a re-import decides credits alike;
- `batch`: `POST /v1/batch`, each item as its single call, in savepoints.
"""

"""What the two doors for outside input share: the HTTP API (`api/`) and the import format
(`ingest/`) check the same request fields and answer a bad one with the same problem.

- `requests.py`: the request models shared by both (tickets, events, credit grants and
  subscriptions) and their field types, with pydantic;
- `problems.py`: RFC 9457 problem details, the field path of a validation error, and the
  problem of an engine error.

Nothing here knows the services or the database; pydantic lives here and in `api/` only.
"""

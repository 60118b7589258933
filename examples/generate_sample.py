"""Generate realistic sample data for `sla-engine import`: a year of a helpdesk's tickets.

Accounts buy licences (2 email tickets each), renew, buy ticket packages when they run out
and a few have a hosted subscription (unlimited email tickets). Tickets, standard and a few
emergency ones, arrive mostly in office hours; each gets an agent reply (usually within the
hour, sometimes late), a conversation, pending periods while waiting on the customer, a
solve, sometimes a reopen, and a close. Some come in without an account (plain SLA use).

Lines are in time order, each ticket followed by its events (as `sla-engine export` writes
them): grants come before the tickets that spend them.

    python examples/generate_sample.py --tickets 1000 > sample.jsonl
    python examples/generate_sample.py --tickets 100000 --events 10 --out big.jsonl
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

PHOENIX = timedelta(hours=-7)  # the support team's zone (no DST)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass
class Account:
    name: str
    hosted: bool
    lots: list[list[Any]] = field(default_factory=list)  # [expires_at, remaining]


def iso(t: datetime) -> str:
    """The instant with the team's offset, as a helpdesk would send it."""
    return t.astimezone(PHOENIX_TZ).isoformat()


PHOENIX_TZ = __import__("datetime").timezone(PHOENIX)


def office_time(rng: random.Random, day: datetime) -> datetime:
    """An instant on `day`, mostly in office hours (08:00-17:00 local), weekdays favoured."""
    local_midnight = day.replace(hour=7, minute=0, second=0, microsecond=0)  # 00:00 at -07:00
    if local_midnight.weekday() >= 5 and rng.random() < 0.75:  # most weekend mail waits
        local_midnight += timedelta(days=7 - local_midnight.weekday())
    office = rng.random() < 0.85
    minutes = rng.randrange(8 * 60, 17 * 60) if office else rng.randrange(0, 24 * 60)
    return local_midnight + timedelta(minutes=minutes, seconds=rng.randrange(60))


def expiry(t: datetime) -> datetime:
    day = 28 if (t.month, t.day) == (2, 29) else t.day
    return t.replace(year=t.year + 1, day=day)


class Generator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.rng = random.Random(args.seed)
        self.args = args
        self.start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
        self.accounts = [
            Account(f"acct-{i:05d}", hosted=self.rng.random() < 0.05)
            for i in range(max(1, args.accounts))
        ]
        self.pending_grants: list[tuple[datetime, int, dict[str, Any]]] = []
        self.counter = 0
        self.lines = 0

    # -- credits (a simple model of the engine's rules: expiring first, valid at creation) --

    def grant(self, account: Account, kind: str, at: datetime, quantity: int = 0) -> None:
        body: dict[str, Any] = {"kind": "grant", "account": account.name, "type": kind}
        body["occurred_at"] = iso(at)
        credits = {"license_purchase": 2, "renewal": 1, "bundle_purchase": 2}.get(kind, quantity)
        if kind == "ticket_purchase":
            body["quantity"] = quantity
            body["price_per_ticket"] = "25.00" if quantity > 1 else "35.00"
            body["package"] = f"{quantity}-pack" if quantity > 1 else None
            if body["package"] is None:
                del body["package"]
        account.lots.append([expiry(at), at, credits])
        self.counter += 1
        heapq.heappush(self.pending_grants, (at, self.counter, body))

    def spend(self, account: Account, at: datetime) -> None:
        usable = [lot for lot in account.lots if lot[1] <= at < lot[0] and lot[2] > 0]
        if not usable:
            quantity = self.rng.choice((1, 5, 5, 10))
            self.grant(account, "ticket_purchase", at - self.rng.uniform(1, 72) * HOUR, quantity)
            usable = [account.lots[-1]]
        min(usable, key=lambda lot: (lot[0], lot[1]))[2] -= 1

    def setup_accounts(self, out: IO[str]) -> None:
        for account in self.accounts:
            bought = self.start - self.rng.uniform(0, 330) * DAY
            self.grant(account, "license_purchase", bought)
            renewal = expiry(bought)
            if renewal < self.start + 365 * DAY and self.rng.random() < 0.8:
                self.grant(account, "renewal", renewal)
            if self.rng.random() < 0.1:
                self.grant(account, "bundle_purchase", bought + self.rng.uniform(1, 200) * DAY)
            if account.hosted:
                start = self.start - self.rng.uniform(0, 200) * DAY
                self.counter += 1
                body = {
                    "kind": "subscription",
                    "account": account.name,
                    "type": "hosted",
                    "start": iso(start),
                }
                heapq.heappush(self.pending_grants, (start, self.counter, body))

    # -- tickets --------------------------------------------------------------------------

    def ticket(self, number: int, created: datetime) -> list[dict[str, Any]]:
        rng = self.rng
        ticket_id = f"T-{number:07d}"
        emergency = rng.random() < 0.06
        body: dict[str, Any] = {
            "kind": "ticket",
            "id": ticket_id,
            "policy": "emergency" if emergency else "standard",
            "created_at": iso(created),
        }
        if rng.random() < 0.75:
            account = rng.choice(self.accounts)
            body["account"] = account.name
            if not emergency and not account.hosted:
                self.spend(account, created)
        if rng.random() < 0.6:
            body["product"] = "SmarterMail"
            body["version"] = str(rng.choice((16, 16, 16, 15, 15, 14, 12)))
        return [body, *self.conversation(ticket_id, created, emergency)]

    def conversation(
        self, ticket_id: str, created: datetime, emergency: bool
    ) -> list[dict[str, Any]]:
        rng = self.rng
        wanted = max(2, int(rng.gauss(self.args.events, self.args.events / 3)))
        events: list[dict[str, Any]] = []
        t = created

        def add(kind: str, at: datetime, **data: Any) -> None:
            events.append(
                {
                    "kind": "event",
                    "ticket_id": ticket_id,
                    "event_id": f"{ticket_id}-{len(events) + 1}",
                    "type": kind,
                    "occurred_at": iso(at),
                    **data,
                }
            )

        first = rng.expovariate(1 / (20 if emergency else 50)) * MINUTE
        if rng.random() < 0.08:
            first += rng.uniform(3, 30) * HOUR  # a late first response
        t += first
        add("agent_reply", t)
        if emergency and rng.random() < 0.15:
            add("not_an_emergency", t + MINUTE, refund=rng.random() < 0.5)
        while len(events) < wanted - 2:
            roll = rng.random()
            if roll < 0.2:
                t += rng.uniform(5, 60) * MINUTE
                add("pending", t)
                t += rng.uniform(2, 72) * HOUR
                add("customer_reply", t)
            else:
                t += rng.uniform(10, 600) * MINUTE
                add("customer_reply", t)
            t += rng.expovariate(1 / 90) * MINUTE
            add("agent_reply", t)
        t += rng.uniform(10, 240) * MINUTE
        add("solved", t)
        if rng.random() < 0.05:
            t += rng.uniform(1, 48) * HOUR
            add("reopened", t)
            t += rng.uniform(1, 8) * HOUR
            add("solved", t)
        if rng.random() < 0.01 and not emergency:
            add("verified_bug", t + MINUTE, remedy="credit")
        add("closed", t + rng.uniform(2, 7) * DAY)
        return events

    def write(self, out: IO[str]) -> None:
        self.setup_accounts(out)
        rng = self.rng
        n = self.args.tickets
        times = sorted(office_time(rng, self.start + rng.uniform(0, 365) * DAY) for _ in range(n))
        bad = sorted(rng.sample(range(n), min(self.args.bad, n)))
        for number, created in enumerate(times, start=1):
            lines = self.ticket(number, created)
            while self.pending_grants and self.pending_grants[0][0] <= created:
                self.emit(out, heapq.heappop(self.pending_grants)[2])
            for line in lines:
                self.emit(out, line)
            if bad and bad[0] == number - 1:
                bad.pop(0)
                self.emit_bad(out, number)
        while self.pending_grants:
            self.emit(out, heapq.heappop(self.pending_grants)[2])

    def emit(self, out: IO[str], body: dict[str, Any]) -> None:
        out.write(json.dumps(body, separators=(",", ":")))
        out.write("\n")
        self.lines += 1

    def emit_bad(self, out: IO[str], number: int) -> None:
        """A line a real export would not have, to show how rejects are reported."""
        choice = number % 3
        if choice == 0:
            out.write(
                '{"kind":"event","ticket_id":"T-missing","event_id":"x","type":"solved",'
                '"occurred_at":"2025-06-02T10:00:00-07:00"}\n'
            )
        elif choice == 1:
            out.write(
                '{"kind":"ticket","id":"T-naive","policy":"standard",'
                '"created_at":"2025-05-01T09:00:00"}\n'
            )
        else:
            out.write('{"kind":"event","ticket_id":"T-0000001", "event_id": \n')
        self.lines += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1000, help="tickets (default 1000)")
    parser.add_argument("--events", type=float, default=8, help="mean events a ticket (8)")
    parser.add_argument(
        "--accounts", type=int, default=0, help="accounts (default: one per 5 tickets)"
    )
    parser.add_argument("--start", default="2025-01-01", help="first day (default 2025-01-01)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--bad", type=int, default=0, help="malformed lines to add (default 0)")
    parser.add_argument("--out", help="write here instead of stdout")
    args = parser.parse_args(argv)
    if args.accounts <= 0:
        args.accounts = max(1, args.tickets // 5)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    try:
        generator = Generator(args)
        generator.write(out)
    finally:
        if args.out:
            out.close()
    print(f"{generator.lines:,} lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The whole fleet on this machine: send-to-deliver latency at a steady rate; cached vs plain GETs.

    uv run python bench/e2e.py [--rate 200] [--seconds 10] [--tracing]
    PARLEY_BENCH_REDIS=redis://host:port ...           # an existing cluster instead of our own
    PARLEY_BENCH_POSTGRES_DSN=postgresql://user@host/db # where chat's and notification's DBs go

Starts its own Redis Cluster (``PARLEY_BENCH_PORTS``, 7921-7926, reset before and after) and the
five services as separate processes (``parley.fleet``); chat and notification use fresh
PostgreSQL databases when a server answers (dropped afterwards), else SQLite like the others.
Registers ``--users`` users (cheap Argon2 settings: registration cost is not under test), puts
them in groups of ``--group-size``, connects one WebSocket per user, then posts over REST at
``--rate`` messages/s for ``--seconds`` after ``--warmup`` seconds. ``--viewing`` is the share of
each group's members whose client sends a ``view`` frame for the group's conversation: all of
them by default, as a client does that shows the user's only conversation, so its messages reach
them and notify nobody (DESIGN.md: notification is for members offline or mentioned); with
``--viewing 0`` every other member is also notified of every message (in-app frames, badges, a
notification transaction per post).

Figures:
- ``p50_ms`` / ``p99_ms`` / ``max_ms``: from just before the POST to the ``message.posted`` frame
  (matched by ``client_msg_id``) at each OTHER member's socket;
- ``rate_per_s``: measured posts answered 201 per second (first measured send to last answer);
- ``delivered`` / ``expected`` / ``lost``: deliveries to other members of those posts;
- ``cpu_ms_per_post``: CPU time (user + system, from ``/proc``) of each service process, of the
  Redis nodes, of the PostgreSQL backends serving the bench's databases and of this client while
  posting (warm-up included), per post answered 201: where the machine's two cores go;
  ``fleet_cpu_ms_per_post`` is their sum without the client's share (services, Redis and
  PostgreSQL: what a deployment pays per post);
- ``redis_commands_per_post``: commands the cluster's masters executed over the same span
  (``INFO commandstats``; background work such as heartbeats and lease renewals included), per
  post answered 201, and ``redis_commands_per_post_by_name`` by command name, commands run by
  scripts counted under their own names besides the ``evalsha`` (our own cluster only);
- ``cached_get_per_s`` / ``uncached_get_per_s``: ``GET /api/v1/users/{id}`` per second at a fixed
  concurrency, the same requests against the gateway (response cache on) and a second gateway
  process on the same backends with ``GATEWAY_RESPONSE_CACHE=false``, in alternating rounds;
  ``cached_over_uncached`` is their ratio.
- ``otlp_kib_per_post`` (``--tracing`` only): OTLP bytes the fleet exported, set-up included, per
  measured post. With ``--tracing`` every service exports its spans (OTLP/HTTP protobuf, the SDK's
  batch processor at its 5 s default interval) to a receiver thread in this process, which only
  counts them: its CPU is the client's.
The client (this process) shares the machine's cores with the fleet and the cluster: its own
event-loop delay is part of the latency measured, as it would be for a real client on the box.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import redis
import uvloop
from websockets.asyncio.client import ClientConnection, connect

from parley.cluster import LocalCluster, parse_ports
from parley.fleet import SERVICES, Fleet, sqlite_url
from parley.otlp import OtlpReceiver
from shared.service.runner import freeze_startup_objects

ROOT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("PARLEY_BENCH_PORTS", "7921-7926")
PG_DSN = os.environ.get("PARLEY_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PG_SERVICES = ("chat", "notification")
START_TIMEOUT = 300.0
ENV = {
    # Registration is set-up here, not the subject: hash passwords cheaply.
    "auth": {"AUTH_ARGON2_TIME_COST": "1", "AUTH_ARGON2_MEMORY_COST": "8192"},
    # Every bench client is 127.0.0.1 and a few users send many GETs: budgets out of the way.
    "gateway": {
        "GATEWAY_AUTH_RATE": "100000",
        "GATEWAY_AUTH_BURST": "100000",
        "GATEWAY_ADDRESS_RATE": "100000",
        "GATEWAY_ADDRESS_BURST": "100000",
        "GATEWAY_USER_RATE": "100000",
        "GATEWAY_USER_BURST": "100000",
        "GATEWAY_WS_HANDSHAKE_RATE": "100000",
        "GATEWAY_WS_HANDSHAKE_BURST": "100000",
    },
}


@dataclass(frozen=True)
class Member:
    """A registered user of the bench."""

    id: str
    token: str


@dataclass
class Deliveries:
    """Which posts await which recipients, and the latencies seen so far."""

    due: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    measured: set[str] = field(default_factory=set)
    seen: set[tuple[str, str]] = field(default_factory=set)
    latencies_ms: list[float] = field(default_factory=list)
    duplicates: int = 0

    def arrived(self, cmid: str, user_id: str, at: float) -> None:
        entry = self.due.get(cmid)
        if entry is None or user_id not in entry[1] or cmid not in self.measured:
            return
        if (cmid, user_id) in self.seen:
            self.duplicates += 1
            return
        self.seen.add((cmid, user_id))
        self.latencies_ms.append((at - entry[0]) * 1000)


@asynccontextmanager
async def databases(home: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """Fresh PostgreSQL databases for chat and notification when a server answers, else SQLite."""
    urls = {s: sqlite_url(home, s) for s in ("auth", "user", "chat", "notification")}
    try:
        admin = await asyncpg.connect(PG_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError) as e:
        print(f"database: SQLite for all four (no PostgreSQL at {PG_DSN}: {type(e).__name__})")
        yield "sqlite", urls
        return
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    names = {s: f"parley_bench_{s}_{uuid.uuid4().hex[:8]}" for s in PG_SERVICES}
    try:
        for service, name in names.items():
            await admin.execute(f'CREATE DATABASE "{name}"')
            urls[service] = f"{base}/{name}"
        print(f"database: PostgreSQL for chat and notification ({PG_DSN}), SQLite for the rest")
        yield "postgresql", urls
    finally:
        for name in names.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


class Http:
    """The bench's HTTP client, on aiohttp: the load shares the cores it measures, and aiohttp
    spends about a third of httpx's CPU per request."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def post(
        self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """(status, decoded JSON body or None)."""
        async with self._session.post(url, json=body, headers=headers) as r:
            data = await r.read()
            return r.status, json.loads(data) if data else None

    async def get(self, url: str, headers: dict[str, str]) -> int:
        """The status (the body is read and dropped)."""
        async with self._session.get(url, headers=headers) as r:
            await r.read()
            return r.status


def created(status: int, data: Any, what: str) -> Any:
    if not 200 <= status < 300:
        raise RuntimeError(f"{what}: {status} {data}")
    return data


async def register(http: Http, api: str, count: int) -> list[Member]:
    gate = asyncio.Semaphore(8)

    async def one() -> Member:
        name = f"b{uuid.uuid4().hex[:12]}"
        body = {"username": name, "password": f"pw-{uuid.uuid4().hex}", "display_name": name}
        async with gate:
            url = f"{api}/api/v1/auth/register"
            for attempt in range(5):  # a busy machine's 503: registration is set-up, not measured
                answer = await http.post(url, body)
                if answer[0] == 409 and attempt:  # the earlier try went through after all
                    login = {"username": name, "password": body["password"]}
                    answer = await http.post(f"{api}/api/v1/auth/login", login)
                if answer[0] != 503 or attempt == 4:
                    break
                await asyncio.sleep(1.0 + attempt)
            data = created(*answer, "register")
        return Member(data["user_id"], data["access_token"])

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def make_groups(
    http: Http, api: str, members: list[Member], size: int
) -> list[tuple[str, list[Member]]]:
    groups = []
    for i in range(0, len(members) - size + 1, size):
        people = members[i : i + size]
        body = {"kind": "group", "title": "bench", "member_ids": [m.id for m in people[1:]]}
        answer = await http.post(f"{api}/api/v1/conversations", body, auth(people[0]))
        groups.append((str(created(*answer, "conversation")["id"]), people))
    return groups


def auth(member: Member) -> dict[str, str]:
    return {"Authorization": f"Bearer {member.token}"}


async def open_socket(ws_url: str, member: Member, viewing: str | None) -> ClientConnection:
    """A socket past its ``ready`` frame, and past ``view.ok`` when it views ``viewing``.

    The token travels on the URL only: after ``?token=`` the server answers an ``auth`` frame
    with an error ("already authenticated"), so the frame would be noise here.
    """
    ws = await connect(f"{ws_url}?token={member.token}&device_id=bench", open_timeout=15)
    while json.loads(await asyncio.wait_for(ws.recv(), 15))["type"] != "ready":
        pass
    if viewing is not None:
        await ws.send(json.dumps({"type": "view", "conversation_id": viewing}))
        while json.loads(await asyncio.wait_for(ws.recv(), 15))["type"] != "view.ok":
            pass
    return ws


def on_screen(groups: list[tuple[str, list[Member]]], share: float) -> dict[str, str]:
    """Member id -> the conversation on their screen, for ``share`` of each group's members."""
    out: dict[str, str] = {}
    for conv, people in groups:
        out.update((m.id, conv) for m in people[: round(len(people) * share)])
    return out


async def read_socket(ws: ClientConnection, member: Member, deliveries: Deliveries) -> None:
    async for raw in ws:
        at = time.perf_counter()  # before parsing: the frame is here
        frame: dict[str, Any] = json.loads(raw)
        if frame.get("type") == "message.posted":
            deliveries.arrived(str(frame["message"]["client_msg_id"]), member.id, at)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def command_counts(ports: Sequence[int]) -> Counter[str]:
    """Commands each node has executed so far (``INFO commandstats``), summed over ``ports``."""
    counts: Counter[str] = Counter()
    for port in ports:
        with redis.Redis(port=port) as node:
            if node.info("replication")["role"] != "master":
                continue  # replicas execute what the masters replicate: counted once there
            for name, stats in node.info("commandstats").items():
                counts[name.removeprefix("cmdstat_")] += int(stats["calls"])
    return counts


def database_backends() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving one of the bench's databases."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"parley_bench_" in cmdline:  # "postgres: ... <user> <database> <client> ..."
            found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


def cpu_snapshot(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each named group of processes."""
    return {name: sum(cpu_seconds(pid) for pid in group) for name, group in pids.items()}


@dataclass
class PostResult:
    answered_201: int = 0  # warm-up included
    ok: int = 0
    failed: int = 0
    first_sent: float = 0.0
    last_answered: float = 0.0
    expected: int = 0
    failures: Counter[str] = field(default_factory=Counter)


async def post_steadily(
    http: Http,
    api: str,
    groups: list[tuple[str, list[Member]]],
    deliveries: Deliveries,
    *,
    rate: float,
    warmup: float,
    seconds: float,
    max_in_flight: int,
) -> PostResult:
    """One post every 1/rate s for warmup + seconds; posts sent after the warm-up are measured.

    Late ticks are sent at once, not skipped. At most ``max_in_flight`` posts wait for an answer
    (a client's connection pool): when the fleet cannot keep up the achieved rate drops below the
    asked one instead of an unbounded backlog outliving the window; nothing is sent after it.
    """
    result = PostResult()
    slots = asyncio.Semaphore(max_in_flight)

    async def post(
        i: int, conv: str, sender: Member, others: frozenset[str], measured: bool
    ) -> None:
        try:
            cmid = uuid.uuid4().hex
            if measured:
                deliveries.measured.add(cmid)
            body = {"body": f"bench {i}", "client_msg_id": cmid}
            deliveries.due[cmid] = (time.perf_counter(), others)
            status, _ = await http.post(
                f"{api}/api/v1/conversations/{conv}/messages", body, auth(sender)
            )
        finally:
            slots.release()
        if status == 201:
            result.answered_201 += 1
        if not measured:
            return
        result.last_answered = max(result.last_answered, time.perf_counter())
        if status == 201:
            result.ok += 1
            result.expected += len(others)
        else:
            result.failed += 1
            result.failures[str(status)] += 1
            deliveries.measured.discard(cmid)

    tasks = []
    start = time.perf_counter() + 0.05
    measure_from, end = start + warmup, start + warmup + seconds
    for i in itertools.count():
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        now = time.perf_counter()
        if now >= end:
            slots.release()
            break
        measured = now >= measure_from
        if measured and not result.first_sent:
            result.first_sent = now
        conv, people = groups[i % len(groups)]
        sender = people[(i // len(groups)) % len(people)]
        others = frozenset(m.id for m in people if m is not sender)
        tasks.append(asyncio.create_task(post(i, conv, sender, others, measured)))
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            result.failed += 1
            result.failures[type(outcome).__name__] += 1
    return result


async def get_rate(
    http: Http,
    base: str,
    requests: Sequence[tuple[Member, str]],
    seconds: float,
    concurrency: int,
) -> tuple[int, int, float]:
    """(answered 200, other answers, elapsed s) of the request cycle for ``seconds``."""
    counter = itertools.count()
    ok = bad = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal ok, bad
        while time.perf_counter() < stop_at:
            viewer, target = requests[next(counter) % len(requests)]
            if await http.get(f"{base}/api/v1/users/{target}", auth(viewer)) == 200:
                ok += 1
            else:
                bad += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, bad, time.perf_counter() - started


async def compare_gets(
    http: Http,
    fleet: Fleet,
    members: list[Member],
    *,
    seconds: float,
    concurrency: int,
) -> dict[str, float]:
    """ABBA rounds of the same request cycle against the cached and the uncached gateway."""
    pairs = [(v, t.id) for v in members[:16] for t in members[16:24]]
    random.Random(9).shuffle(pairs)
    bases = {"cached": fleet.url("gateway"), "uncached": fleet.url("gateway-uncached")}
    for base in bases.values():  # one untimed pass each: connections and caches warm
        await get_rate(http, base, pairs, 0.5, concurrency)
    totals = {k: [0, 0, 0.0] for k in bases}
    for kind in ("cached", "uncached", "uncached", "cached"):
        ok, bad, elapsed = await get_rate(http, bases[kind], pairs, seconds / 2, concurrency)
        totals[kind] = [totals[kind][0] + ok, totals[kind][1] + bad, totals[kind][2] + elapsed]
    out = {f"{k}_get_per_s": round(t[0] / t[2], 1) for k, t in totals.items()}
    out["get_errors"] = totals["cached"][1] + totals["uncached"][1]
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0 < q < 100, steps of 0.1), NaN without values."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


async def run(args: argparse.Namespace, redis_url: str, home: Path) -> dict[str, Any]:
    if not args.tracing:
        return await run_fleet(args, redis_url, home, ENV)
    with OtlpReceiver(decode=False) as receiver:
        # The SDK's own export interval (5 s): what a deployment that only sets an endpoint gets.
        traced = {s: {**ENV.get(s, {}), **receiver.env(schedule_delay_ms=5000)} for s in SERVICES}
        figures = await run_fleet(args, redis_url, home, traced)
        figures["otlp_kib_per_post"] = round(receiver.bytes / 1024 / max(1, figures["posts_ok"]), 2)
        return figures


async def run_fleet(
    args: argparse.Namespace, redis_url: str, home: Path, env: dict[str, dict[str, str]]
) -> dict[str, Any]:
    async with databases(home) as (database, urls):
        with Fleet(redis_url, home, database_url=urls.__getitem__, extra_env=env) as fleet:
            t = time.perf_counter()
            # Roomy: on a shared, loaded machine five processes importing at once took 90 s.
            await asyncio.to_thread(fleet.start, timeout=START_TIMEOUT)
            fleet.add("gateway", name="gateway-uncached", env={"GATEWAY_RESPONSE_CACHE": "false"})
            await asyncio.to_thread(fleet.wait_ready, timeout=START_TIMEOUT)
            print(f"fleet ready in {time.perf_counter() - t:.1f}s: {fleet.ports}")
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256),
                timeout=aiohttp.ClientTimeout(total=30),
            ) as session:
                return await measure(args, fleet, Http(session), database)
    raise AssertionError("unreachable")


async def measure(
    args: argparse.Namespace, fleet: Fleet, http: Http, database: str
) -> dict[str, Any]:
    members = await register(http, fleet.api, args.users)
    groups = await make_groups(http, fleet.api, members, args.group_size)
    print(
        f"{len(members)} users registered (cheap Argon2: time_cost=1, memory_cost=8 MiB), "
        f"{len(groups)} groups of {args.group_size}"
    )
    viewing = on_screen(groups, args.viewing)
    sockets = await asyncio.gather(*(open_socket(fleet.ws, m, viewing.get(m.id)) for m in members))
    deliveries = Deliveries()
    readers = [
        asyncio.create_task(read_socket(ws, m, deliveries))
        for ws, m in zip(sockets, members, strict=True)
    ]
    print(
        f"{len(sockets)} WebSockets ready, {len(viewing)} viewing their group; "
        f"posting {args.rate:g} msg/s for {args.warmup:g}s warm-up + {args.seconds:g}s measured"
    )
    freeze_startup_objects()  # as the services do: the set-up is not walked by every full GC
    pids = {name: [p.popen.pid] for name, p in fleet.processes.items()}
    pids["redis"] = list(args.node_pids)
    pids["client"] = [os.getpid()]
    commands_before = await asyncio.to_thread(command_counts, args.node_ports)
    cpu_before = cpu_snapshot(pids)
    backends_before = database_backends()
    posts = await post_steadily(
        http,
        fleet.api,
        groups,
        deliveries,
        rate=args.rate,
        warmup=args.warmup,
        seconds=args.seconds,
        max_in_flight=args.max_in_flight,
    )
    cpu_after = cpu_snapshot(pids)
    backends = database_backends()  # a backend started meanwhile counts from zero
    cpu_before["postgres"] = 0.0
    cpu_after["postgres"] = sum(t - backends_before.get(p, 0.0) for p, t in backends.items())
    commands = await asyncio.to_thread(command_counts, args.node_ports)
    commands.subtract(commands_before)
    per_post = max(posts.answered_201, 1)
    cpu_ms = {
        name: round((cpu_after[name] - cpu_before[name]) * 1000 / max(posts.answered_201, 1), 2)
        for name in cpu_after
        if name != "gateway-uncached"  # idle while posting
    }
    for _ in range(50):  # up to 5 s for the last deliveries; the rest count as lost
        if len(deliveries.latencies_ms) >= posts.expected:
            break
        await asyncio.sleep(0.1)
    closed = Counter(str(ws.close_code) for ws in sockets if ws.close_code is not None)
    for ws in sockets:
        await ws.close()
    for task in readers:
        task.cancel()
    gets = await compare_gets(
        http, fleet, members, seconds=args.get_seconds, concurrency=args.concurrency
    )
    lat = deliveries.latencies_ms
    return {
        "p50_ms": round(percentile(lat, 50), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "max_ms": round(max(lat, default=float("nan")), 2),
        "rate_per_s": round(posts.ok / max(posts.last_answered - posts.first_sent, 1e-9), 1),
        "target_rate_per_s": args.rate,
        "max_in_flight": args.max_in_flight,
        "posts_ok": posts.ok,
        "posts_failed": posts.failed,
        "post_failures": dict(posts.failures),
        "delivered": len(lat),
        "expected": posts.expected,
        "lost": posts.expected - len(lat),
        "duplicates": deliveries.duplicates,
        "sockets_closed_by_server": dict(closed),
        "cpu_ms_per_post": cpu_ms,
        "cpu_ms_per_post_total": round(sum(cpu_ms.values()), 1),
        "fleet_cpu_ms_per_post": round(sum(cpu_ms.values()) - cpu_ms.get("client", 0.0), 2),
        "redis_commands_per_post": round(commands.total() / per_post, 1) if commands else None,
        "redis_commands_per_post_by_name": {
            name: round(n / per_post, 2) for name, n in commands.most_common() if n > 0
        },
        **gets,
        "cached_over_uncached": round(
            gets["cached_get_per_s"] / max(gets["uncached_get_per_s"], 1e-9), 2
        ),
        "get_concurrency": args.concurrency,
        "users": len(members),
        "viewing": len(viewing),
        "conversations": len(groups),
        "database": database,
    }


def table(figures: dict[str, Any]) -> str:
    f = figures
    rows = [
        ("send -> deliver p50", f"{f['p50_ms']} ms"),
        ("send -> deliver p99", f"{f['p99_ms']} ms  (target <= 25 ms)"),
        ("send -> deliver max", f"{f['max_ms']} ms"),
        ("posts per second", f"{f['rate_per_s']} achieved / {f['target_rate_per_s']:g} asked"),
        ("posts ok / failed", f"{f['posts_ok']} / {f['posts_failed']}"),
        (
            "deliveries",
            f"{f['delivered']} of {f['expected']} ({f['lost']} lost, {f['duplicates']} repeated)",
        ),
        (
            "CPU per post",
            f"{f['cpu_ms_per_post_total']} ms ({f['fleet_cpu_ms_per_post']} without the client): "
            + ", ".join(f"{k} {v}" for k, v in f["cpu_ms_per_post"].items()),
        ),
        (
            "Redis commands per post",
            f"{f['redis_commands_per_post']} on the masters: "
            + ", ".join(
                f"{k} {v}" for k, v in list(f["redis_commands_per_post_by_name"].items())[:12]
            ),
        ),
        *(
            (f"  {name}", f"{n} per post")
            for name, n in f["redis_commands_per_post_by_name"].items()
            if n >= 0.05
        ),
        ("GET /users/{id} cached", f"{f['cached_get_per_s']} /s"),
        ("GET /users/{id} uncached", f"{f['uncached_get_per_s']} /s"),
        (
            "cached / uncached",
            f"{f['cached_over_uncached']}x  (concurrency {f['get_concurrency']})",
        ),
        ("clients viewing their group", f"{f['viewing']} of {f['users']}"),
        ("database (chat, notification)", f["database"]),
    ]
    return "\n".join(f"  {name:<32} {value}" for name, value in rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=200.0, help="posts per second (200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured posting time (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured posting first (2)")
    parser.add_argument("--users", type=int, default=50, help="users, one WebSocket each (50)")
    parser.add_argument("--group-size", type=int, default=5, help="members per group (5)")
    parser.add_argument("--concurrency", type=int, default=16, help="GETs in flight (16)")
    parser.add_argument("--get-seconds", type=float, default=5.0, help="per gateway (5)")
    parser.add_argument(
        "--viewing",
        type=float,
        default=1.0,
        help="share of each group's members with the conversation on screen (1)",
    )
    parser.add_argument("--max-in-flight", type=int, default=64, help="posts unanswered (64)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs")
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="every service exports its spans (OTLP/HTTP) to a receiver in this process",
    )
    args = parser.parse_args()
    if args.users < 24 or args.group_size < 2:
        parser.error("need --users >= 24 (16 viewers, 8 profiles) and --group-size >= 2")
    if not 0 <= args.viewing <= 1:
        parser.error("--viewing is a share: 0 to 1")
    return args


def main() -> None:
    args = parse_args()
    args.node_pids = []  # our own cluster's nodes, whose CPU time is reported
    args.node_ports = []  # and whose commands are counted
    external = os.environ.get("PARLEY_BENCH_REDIS")
    cluster = None if external else LocalCluster(ROOT / ".parley", parse_ports(PORTS))
    redis_url = external or ""
    home = Path(tempfile.mkdtemp(prefix="parley-bench-e2e-"))
    try:
        if cluster is not None:
            cluster.reset()
            cluster.up()
            redis_url = cluster.url()
            args.node_pids = [pid for port in cluster.ports if (pid := cluster.pid(port))]
            args.node_ports = list(cluster.ports)
        print(f"redis: {redis_url} ({'given' if external else 'own cluster ' + PORTS})")
        figures = uvloop.run(run(args, redis_url, home))  # as the services run
        if args.keep_logs:
            print(f"service logs in {home}")
    except BaseException:
        print(f"bench failed; service logs kept in {home}")
        raise
    finally:
        if cluster is not None:
            cluster.reset()
    if not args.keep_logs:
        shutil.rmtree(home, ignore_errors=True)
    print(table(figures))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

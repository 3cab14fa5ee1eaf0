"""Many WebSockets on one gateway: memory, connect rate, Redis connections, fan-out, restart.

    uv run python bench/ws_scale.py [--sockets 10000] [--curve 1000,5000,10000]
    PARLEY_BENCH_PORTS=7931-7936 (our own cluster, reset before and after)
    PARLEY_BENCH_POSTGRES_DSN=postgresql://user@host/db (chat's and notification's databases)

Starts its own Redis Cluster and fleet (``parley.fleet``, as ``bench/e2e.py``), and, in the same
run, a bare uvicorn + Starlette WebSocket echo server configured by the same
``shared.service.runner.uvicorn_config`` (same uvicorn, same ``websockets`` implementation, no
compression): the baseline the gateway's figures are divided by.

The open-files limit (``RLIMIT_NOFILE``) is raised to its hard limit first; the gateway, the bare
server and every other child inherit it (``fork`` keeps rlimits). Users: ``--sockets`` / 1.25 of
them, a fifth with a second device (a second socket); each user is a member of 1 to 10 groups of
about 8, and the first ``--group`` (1000) users also of one large group.

Figures (last line, one JSON object):
- ``sockets``, ``channels`` (the gateway's ``parley_gateway_rt_channels``);
- ``gateway_redis_connections``: ``CLIENT LIST`` on every node, the entries named as the gateway
  names its connections (``GATEWAY_INSTANCE``; every connection of a service carries the
  instance as its client name); ``gateway_redis_connections_bound``: 2 x masters + the pool size;
- ``rss_kb_per_socket`` / ``bare_rss_kb_per_socket``: growth of the server's RSS over the sockets
  opened (after a settle), per socket; ``rss_over_bare``;
- ``connects_per_s`` / ``bare_connects_per_s``: sockets opened (past ``ready`` for the gateway,
  past the handshake for the bare server) per second, ``--concurrency`` handshakes in flight;
- ``fanout_p50_ms`` / ``fanout_p99_ms``: from the POST of a message to the large group to its
  ``message.posted`` at every socket of every member (``--posts`` posts, one at a time);
- ``delivered`` / ``expected`` / ``duplicates``: those deliveries (a socket seeing one message twice
  counts as a duplicate);
- ``reconnect_all_s``: the gateway is stopped (SIGTERM: its sockets close with 1001) and started
  again; from the new process answering ready to every socket past ``ready`` again
  (``restart_s``: from the SIGTERM).
- ``curve``: with ``--curve``, the RSS per socket and connect rate at each step, sockets opened
  incrementally on the same gateway (and on the bare server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis
import uvloop
from e2e import ENV, Http, Member, auth, created, databases, percentile, register
from websockets.asyncio.client import ClientConnection, connect

from parley.cluster import LocalCluster, parse_ports
from parley.fleet import Fleet, free_port

ROOT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("PARLEY_BENCH_PORTS", "7931-7936")
INSTANCE = f"bench-gateway-{uuid.uuid4().hex[:6]}"
GATEWAY_ENV = {
    **ENV["gateway"],
    "GATEWAY_INSTANCE": INSTANCE,
    # The bench's clients all come from 127.0.0.1: per-address budgets out of the way.
    "GATEWAY_WS_MAX_PER_ADDRESS": "1000000",
    "GATEWAY_WS_HANDSHAKE_RATE": "1000000",
    "GATEWAY_WS_HANDSHAKE_BURST": "1000000",
    # Tokens minted at registration must outlive a long run (their sockets close at expiry).
    "GATEWAY_MAX_TOKEN_LIFETIME": "14400",
}
AUTH_ENV = {**ENV["auth"], "AUTH_ACCESS_TOKEN_TTL": "14400"}
BARE_SERVER = Path(__file__).resolve().parent / "ws_bare.py"


def raise_open_files() -> int:
    """Raise RLIMIT_NOFILE to the hard limit (children inherit it); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"open files: soft limit {soft} -> {hard} (hard {hard}), inherited by the servers")
    return hard


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Socket:
    """One client socket of the bench: its user and which messages it saw."""

    member: Member
    device: str
    ws: ClientConnection | None = None
    seen: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Clients:
    """Every client socket, kept open (and reopened after a close) against ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sockets: list[Socket] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.closes: dict[int, int] = {}

    async def open(self, sockets: list[Socket], concurrency: int) -> float:
        """Open ``sockets`` until each saw ``ready``; seconds it took."""
        gate = asyncio.Semaphore(concurrency)
        started = time.perf_counter()

        async def one(s: Socket) -> None:
            async with gate:
                await self._connect(s)
            self.tasks.append(asyncio.create_task(self._keep(s)))

        await asyncio.gather(*(one(s) for s in sockets))
        self.sockets.extend(sockets)
        return time.perf_counter() - started

    async def _connect(self, s: Socket) -> None:
        for attempt in range(50):
            try:
                url = f"{self.url}?token={s.member.token}&device_id={s.device}"
                ws = await connect(url, open_timeout=30, compression=None, max_queue=64)
                while json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] != "ready":
                    pass
                s.ws = ws
                s.ready.set()
                return
            except (OSError, TimeoutError, Exception) as e:  # refused while restarting, ...
                if attempt == 49:
                    raise RuntimeError(f"socket of {s.member.id} never got ready: {e!r}") from e
                await asyncio.sleep(0.1 + random.random() * 0.4)

    async def _keep(self, s: Socket) -> None:
        while True:
            assert s.ws is not None
            try:
                async for raw in s.ws:
                    at = time.perf_counter()
                    frame = json.loads(raw)
                    if frame.get("type") == "message.posted":
                        cmid = str(frame["message"]["client_msg_id"])
                        if cmid in s.seen:
                            s.duplicates += 1
                        else:
                            s.seen[cmid] = at
            except Exception:
                pass
            code = s.ws.close_code or 0
            self.closes[code] = self.closes.get(code, 0) + 1
            s.ready.clear()
            await self._connect(s)

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(
            *(s.ws.close() for s in self.sockets if s.ws is not None), return_exceptions=True
        )


async def bare_figures(steps: list[int], concurrency: int) -> list[dict[str, float]]:
    """RSS growth and connect rate of the bare echo server at each step."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(BARE_SERVER), str(port)])  # noqa: ASYNC220
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        deadline = time.monotonic() + 120  # a busy machine imports slowly
        while True:
            try:
                await (await connect(url)).close()
                break
            except OSError as e:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the bare server did not start ({proc.returncode})") from e
                await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        base, opened, out = rss_kb(proc.pid), 0, []
        sockets: list[ClientConnection] = []
        gate = asyncio.Semaphore(concurrency)

        async def one() -> ClientConnection:
            async with gate:
                return await connect(url, compression=None, max_queue=64, open_timeout=30)

        for step in steps:
            t = time.perf_counter()
            sockets += await asyncio.gather(*(one() for _ in range(step - opened)))
            took = time.perf_counter() - t
            await asyncio.sleep(1.0)
            rate = (step - opened) / took
            opened = step
            out.append({"sockets": step, "rss_kb_per_socket": (rss_kb(proc.pid) - base) / step})
            out[-1]["connects_per_s"] = rate
        await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
        return out
    finally:
        proc.terminate()
        proc.wait(10)


def plan_groups(users: list[Member], size: int) -> list[list[Member]]:
    """Groups of about ``size`` in which every user is a member of 1 to 10."""
    slots = [u for u in users for _ in range(random.randint(1, 10))]
    random.shuffle(slots)
    groups = []
    for i in range(0, len(slots), size):
        people = list({m.id: m for m in slots[i : i + size]}.values())
        if len(people) >= 2:
            groups.append(people)
    return groups


async def create_groups(http: Http, api: str, groups: list[list[Member]]) -> list[str]:
    gate = asyncio.Semaphore(16)

    async def one(people: list[Member]) -> str:
        body = {"kind": "group", "title": "bench", "member_ids": [m.id for m in people[1:]]}
        async with gate:
            for attempt in range(5):  # a busy machine's 503 (a retried one may leave a spare group)
                answer = await http.post(f"{api}/api/v1/conversations", body, auth(people[0]))
                if answer[0] != 503 or attempt == 4:
                    break
                await asyncio.sleep(1.0 + attempt)
        return str(created(*answer, "conversation")["id"])

    return list(await asyncio.gather(*(one(g) for g in groups)))


def gateway_redis_connections(ports: list[int]) -> tuple[int, int]:
    """(connections named as the gateway's instance on every node, masters)."""
    count = masters = 0
    for port in ports:
        with redis.Redis(port=port) as node:
            masters += node.info("replication")["role"] == "master"
            # Its command pool is named after the instance, its pub/sub connections "-pubsub".
            names = {INSTANCE, f"{INSTANCE}-pubsub"}
            count += sum(1 for c in node.client_list() if c.get("name") in names)
    return count, masters


async def gauge(http: Http, url: str, name: str) -> float:
    async with http._session.get(f"{url}/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


async def fanout(
    http: Http, api: str, conv: str, sender: Member, watchers: list[Socket], posts: int
) -> dict[str, Any]:
    latencies: list[float] = []
    delivered = expected = 0
    for i in range(posts):
        cmid = uuid.uuid4().hex
        body = {"body": f"fan-out {i}", "client_msg_id": cmid}
        sent = time.perf_counter()
        for attempt in range(3):  # the same client_msg_id: a retried post is not posted twice
            answer = await http.post(
                f"{api}/api/v1/conversations/{conv}/messages", body, auth(sender)
            )
            if answer[0] != 503 or attempt == 2:
                created(*answer, "post")
                break
        deadline = time.perf_counter() + 10
        # Polling the sockets' records: one Event per (socket, message) would cost more.
        while time.perf_counter() < deadline and not all(cmid in s.seen for s in watchers):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        expected += len(watchers)
        arrived = [s.seen[cmid] for s in watchers if cmid in s.seen]
        delivered += len(arrived)
        latencies += [(at - sent) * 1000 for at in arrived]
    return {
        "fanout_p50_ms": round(percentile(latencies, 50), 1),
        "fanout_p99_ms": round(percentile(latencies, 99), 1),
        "delivered": delivered,
        "expected": expected,
    }


async def restart(fleet: Fleet, clients: Clients) -> dict[str, float]:
    t0 = time.perf_counter()
    old = fleet.processes.pop("gateway")
    old.popen.send_signal(signal.SIGTERM)
    await asyncio.to_thread(old.popen.wait, 60)
    fleet.add("gateway", env=GATEWAY_ENV)
    clients.url = fleet.ws
    await asyncio.to_thread(fleet.wait_ready, ["gateway"])
    t1 = time.perf_counter()
    await asyncio.gather(*(s.ready.wait() for s in clients.sockets))
    t2 = time.perf_counter()
    return {"reconnect_all_s": round(t2 - t1, 2), "restart_s": round(t2 - t0, 2)}


async def run(args: argparse.Namespace, redis_url: str, home: Path) -> dict[str, Any]:
    steps = args.curve or [args.sockets]
    print(f"bare server: {steps[-1]} sockets")
    bare = await bare_figures(steps, args.concurrency)
    async with databases(home) as (_, urls):
        GATEWAY_ENV["GATEWAY_REDIS_MAX_CONNECTIONS_TOTAL"] = str(args.pool)
        env = {**ENV, "auth": AUTH_ENV, "gateway": GATEWAY_ENV}
        with Fleet(redis_url, home, database_url=urls.__getitem__, extra_env=env) as fleet:
            await asyncio.to_thread(fleet.start)
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64), timeout=aiohttp.ClientTimeout(total=60)
            ) as session:
                return await measure(args, fleet, Http(session), steps, bare)
    raise AssertionError("unreachable")


async def measure(
    args: argparse.Namespace, fleet: Fleet, http: Http, steps: list[int], bare: list[Any]
) -> dict[str, Any]:
    total = steps[-1]
    t = time.perf_counter()
    users = await register(http, fleet.api, max(args.group, round(total / 1.25)))
    groups = plan_groups(users, 8)
    await create_groups(http, fleet.api, groups)
    big = users[: args.group]
    (big_conv,) = await create_groups(http, fleet.api, [big])
    print(f"{len(users)} users, {len(groups) + 1} groups in {time.perf_counter() - t:.0f}s")
    devices = [Socket(u, "one") for u in users]
    devices += [Socket(u, "two") for u in users[: total - len(users)]]
    clients = Clients(fleet.ws)
    pid = fleet.processes["gateway"].popen.pid
    await asyncio.sleep(1.0)
    base, opened, curve = rss_kb(pid), 0, []
    for step, baseline in zip(steps, bare, strict=True):
        took = await clients.open(devices[opened:step], args.concurrency)
        await asyncio.sleep(2.0)
        point = {
            "sockets": step,
            "rss_kb_per_socket": round((rss_kb(pid) - base) / step, 1),
            "bare_rss_kb_per_socket": round(baseline["rss_kb_per_socket"], 1),
            "connects_per_s": round((step - opened) / took, 1),
            "bare_connects_per_s": round(baseline["connects_per_s"], 1),
        }
        opened = step
        curve.append(point)
        print(f"  {point}")
    channels = await gauge(http, fleet.admin_url(), "parley_gateway_rt_channels")
    connections, masters = gateway_redis_connections(args.node_ports)
    big_ids = {m.id for m in big}
    watchers = [s for s in clients.sockets if s.member.id in big_ids]
    figures: dict[str, Any] = {
        "sockets": total,
        "users": len(users),
        "channels": int(channels),
        "gateway_redis_connections": connections,
        "gateway_redis_connections_bound": 2 * masters + args.pool,
        **{k: v for k, v in curve[-1].items() if k != "sockets"},
    }
    figures["rss_over_bare"] = round(
        figures["rss_kb_per_socket"] / figures["bare_rss_kb_per_socket"], 2
    )
    figures["connects_over_bare"] = round(
        figures["connects_per_s"] / figures["bare_connects_per_s"], 2
    )
    figures.update(await fanout(http, fleet.api, big_conv, big[0], watchers, args.posts))
    figures.update(await restart(fleet, clients))
    figures["close_codes"] = dict(clients.closes)
    figures["duplicates"] = sum(s.duplicates for s in clients.sockets)
    if args.curve:
        figures["curve"] = curve
    await clients.aclose()
    return figures


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sockets", type=int, default=10_000, help="sockets (10000)")
    parser.add_argument("--curve", type=lambda s: sorted(int(x) for x in s.split(",")))
    parser.add_argument("--group", type=int, default=1000, help="large group's members (1000)")
    parser.add_argument("--posts", type=int, default=20, help="posts to the large group (20)")
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight (64)")
    parser.add_argument(
        "--pool", type=int, default=96, help="GATEWAY_REDIS_MAX_CONNECTIONS_TOTAL (96)"
    )
    args = parser.parse_args()
    if args.curve:
        args.sockets = args.curve[-1]
    return args


def main() -> None:
    args = parse_args()
    limit = raise_open_files()
    if limit < args.sockets * 2 + 1000:
        print(f"warning: {limit} open files may not hold {args.sockets} sockets at both ends")
    cluster = LocalCluster(ROOT / ".parley", parse_ports(PORTS))
    home = Path(tempfile.mkdtemp(prefix="parley-bench-ws-"))
    try:
        cluster.reset()
        cluster.up()
        args.node_ports = list(cluster.ports)
        figures = uvloop.run(run(args, cluster.url(), home))
    except BaseException:
        print(f"bench failed; service logs kept in {home}")
        raise
    finally:
        cluster.reset()
    shutil.rmtree(home, ignore_errors=True)
    for name, value in figures.items():
        if name != "curve":
            print(f"  {name:<34} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

"""Auth throughput through the bus: logins/s (bounded by Argon2) and refreshes/s, per process.

    uv run python bench/auth.py              # starts its own cluster on ports 7321-7326
    PARLEY_BENCH_REDIS=redis://host:port uv run python bench/auth.py

One auth instance (this process) consumes its commands from the real bus; a requester in the same
process sends them ``CONCURRENCY`` at a time. Figures (ratios travel between machines):
- ``logins_per_s`` with the production Argon2 parameters printed beside it, and
  ``login_over_argon2``: logins/s over bare Argon2 verifies/s on the same thread pool (how
  much of the Argon2 bound the whole login path, bus and Redis and SQLite included, achieves);
- ``refreshes_per_s`` and ``refresh_over_bus``: refreshes/s over ``get_public_keys``/s (a command
  that does no work: the bus round trip alone).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the `auth`
# package: drop the folder before importing the service.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from pydantic import SecretStr  # noqa: E402

from auth.bootstrap import MIGRATIONS, wire  # noqa: E402
from auth.config import Settings  # noqa: E402
from auth.crypto.passwords import Argon2Parameters, PasswordHasher  # noqa: E402
from auth.crypto.sealing import new_key  # noqa: E402
from contracts import auth as wire_auth  # noqa: E402
from parley.cluster import bench_cluster  # noqa: E402
from shared.bus import Consumer, ConsumerSettings, Publisher, Requester  # noqa: E402
from shared.redis.client import RedisSettings, create_client  # noqa: E402
from shared.service.database import Database  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("PARLEY_BENCH_PORTS", "7321-7326")
CONCURRENCY = 8
LOGINS = int(os.environ.get("PARLEY_BENCH_LOGINS", "48"))
REFRESHES = int(os.environ.get("PARLEY_BENCH_REFRESHES", "600"))
PASSWORD = "correct horse battery"


async def rate(n: int, op: Callable[[int], Awaitable[object]]) -> float:
    """Operations per second for ``n`` calls of ``op(worker)``, ``CONCURRENCY`` workers."""
    queue = iter(range(n))

    async def worker(w: int) -> None:
        for _ in queue:
            await op(w)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
    return n / (time.perf_counter() - started)


async def run(url: str) -> dict[str, float | str]:
    settings = Settings(key_encryption_key=SecretStr(new_key()), login_failures=10_000)
    params = Argon2Parameters(
        settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism
    )
    client = await create_client(RedisSettings(url=url))
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/auth.db")
        await db.migrate(MIGRATIONS)
        publisher = Publisher(client, producer="auth")
        parts = wire(client, db.engine, settings, publisher=publisher)
        await parts.keys.ensure_active()
        fast = ConsumerSettings(block_ms=100)
        consumer = Consumer(
            client, group="auth", handlers=parts.commands.table(), settings=fast, producer="auth"
        )
        gateway = Publisher(client, producer="gateway")
        # Passwords and tokens cross the bus sealed, as the gateway sends them (shared.transit).
        transit = parts.commands.transit
        async with consumer, Requester(client, gateway, instance_id=uuid.uuid4().hex[:12]) as req:
            username = f"bench{uuid.uuid4().hex[:10]}"
            first = await req.request(
                transit.seal(
                    wire_auth.Register(username=username, password=PASSWORD, display_name="Bench")
                ),
                timeout=30,
            )
            assert first.ok, first.error

            hasher = PasswordHasher(params)
            stored = hasher.hash(PASSWORD)

            async def verify(_: int) -> None:
                await asyncio.to_thread(hasher.verify, stored, PASSWORD)

            tokens: list[str] = []

            async def login(_: int) -> None:
                reply = await req.request(
                    transit.seal(wire_auth.Login(username=username, password=PASSWORD)), timeout=60
                )
                assert reply.ok, reply.error
                tokens.append(transit.open(reply.result).refresh_token)  # type: ignore[arg-type]

            async def keys(_: int) -> None:
                assert (await req.request(wire_auth.GetPublicKeys(), timeout=30)).ok

            async def refresh(slot: int) -> None:
                # Each worker rotates its own session: sharing one would be (and is refused as)
                # refresh-token reuse.
                command = transit.seal(wire_auth.Refresh(refresh_token=tokens[slot]))
                reply = await req.request(command, timeout=30)
                assert reply.ok, reply.error
                tokens[slot] = transit.open(reply.result).refresh_token  # type: ignore[arg-type]

            argon2 = await rate(LOGINS, verify)
            logins = await rate(LOGINS, login)
            bus = await rate(REFRESHES, keys)
            refreshes = await rate(REFRESHES, refresh)
        await publisher.aclose()
        await gateway.aclose()
        await db.close()
    await client.aclose()
    return {
        "argon2": params.describe(),
        "argon2_verifies_per_s": round(argon2, 1),
        "logins_per_s": round(logins, 1),
        "login_over_argon2": round(logins / argon2, 3),
        "bus_commands_per_s": round(bus, 1),
        "refreshes_per_s": round(refreshes, 1),
        "refresh_over_bus": round(refreshes / bus, 3),
    }


def main() -> None:
    with bench_cluster(ROOT / ".parley", PORTS) as url:
        figures = asyncio.run(run(url))
    print(f"{'figure':<24} {'value':>24}")
    for name, value in figures.items():
        print(f"{name:<24} {value!s:>24}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

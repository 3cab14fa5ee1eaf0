"""redis-py's asyncio clients with the gaps closed: bounded pool waits, backoff retries, metrics.

redis-py 8's async cluster client raises ``MaxConnectionsError`` at once when a node's pool is full,
and retries a failed command immediately, without backoff. :class:`ResilientRedisCluster` puts a
per-node semaphore (as many permits as the pool has connections) in front of every command, so a
caller waits up to ``pool_timeout`` for a free connection, and wraps each command in one retry loop
with exponential backoff and equal jitter. redis-py still does what it does well: it follows MOVED
and ASK (refreshing its slot map), re-reads the topology after a connection error, and waits on
TRYAGAIN; our loop adds the backoff between whole attempts. :class:`ResilientRedis` does the same
for a single node on redis-py's ``BlockingConnectionPool``.

Circuit breakers (:mod:`shared.breaker`) stop an outage from costing every command its whole
retry budget. The cluster client has one per node (a refused command re-reads the slot map now and
then and retries within its budget, since a failover may move the slot to a live node) and one for
the slot map: when no node answers ``CLUSTER SLOTS``, commands and pipelines fail at once with
:class:`~shared.redis.errors.RedisCircuitOpen` until a probe reads the map again. A single-node
client has one breaker for its server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode, ClusterPipeline
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.cluster import PRIMARY
from redis.exceptions import (
    AskError,
    AuthenticationError,
    AuthorizationError,
    ClusterDownError,
    ClusterError,
    MaxConnectionsError,
    MovedError,
    ReadOnlyError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, KeyT

from shared import metrics
from shared.breaker import CLOSED, Breakers, BreakerSettings, CircuitBreaker
from shared.redis.errors import (
    NodeCircuitOpen,
    PoolExhausted,
    RedisCircuitOpen,
    RedisUnavailable,
    TopologyUnavailable,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` retries after the first try; backoff doubles from ``base`` up to ``cap``."""

    attempts: int
    base: float
    cap: float

    def backoff(self, failures: int) -> float:
        """Seconds to sleep before retry number ``failures``: half fixed, half random."""
        # Equal jitter keeps a floor under each wait, so the whole retry window is long enough to
        # ride out a failover, while the random half still spreads a herd of clients apart.
        return EqualJitterBackoff(cap=self.cap, base=self.base).compute(failures)


def retry_reason(error: BaseException) -> str | None:
    """Why ``error`` is worth a retry (the metric label), or None when it is not transient."""
    if isinstance(error, RedisCircuitOpen):
        return "breaker" if isinstance(error, NodeCircuitOpen) else None
    if isinstance(error, PoolExhausted | AuthenticationError | AuthorizationError):
        return None  # Already waited, or will fail the same way again.
    if isinstance(error, TopologyUnavailable | SlotNotCoveredError):
        return "topology"
    if isinstance(error, ClusterDownError):
        return "clusterdown"
    if isinstance(error, TryAgainError):
        return "tryagain"
    if isinstance(error, RedisTimeoutError):
        return "timeout"
    if isinstance(error, MaxConnectionsError):
        return None
    if isinstance(error, RedisConnectionError):
        return "connection"
    if isinstance(error, ReadOnlyError):
        return "readonly"  # We wrote to a demoted master: the slot map is stale.
    if type(error) is ClusterError:
        return "redirects"  # redis-py gave up following MOVED/ASK/TRYAGAIN ("TTL exhausted").
    return None


_TRANSPORT_FILES = (
    "redis/asyncio/connection.py",
    "asyncio/streams.py",
    "asyncio/selector_events.py",
)


def transport_closed(error: BaseException) -> bool:
    """Whether ``error`` is the event loop refusing a write on a transport already closed
    (uvloop: "unable to perform operation on <TCPTransport closed=True ...>; the handler is
    closed"): the connection died under the command, nothing was sent."""
    return isinstance(error, RuntimeError) and "handler is closed" in str(error)


def closed_under_us(error: BaseException) -> bool:
    """Whether ``error`` is redis-py writing to a connection that was closed while in use.

    redis-py's cluster client closes every node's connections, those in use by other tasks
    included, on CLUSTERDOWN, an uncovered slot and every few MOVED replies; a command of another
    task that checked its connection and then wrote met ``None`` for the writer (AttributeError),
    or a transport torn down under it (TypeError), neither of which is a ``ConnectionError``.
    redis-py issues #3546 and #4287 describe the transport case.
    """
    if "NoneType" not in str(error):
        return False
    tb = error.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and last.replace("\\", "/").endswith(_TRANSPORT_FILES)


async def run_command(
    call: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    policy: RetryPolicy,
    on_retry: Callable[[str], None],
) -> Any:
    """Run ``call(*args, **kwargs)`` with retries and backoff, timing it for the metrics."""
    command = args[0] if isinstance(args[0], str) else str(args[0])
    started = time.perf_counter()
    failures = 0
    while True:
        try:
            result = await call(*args, **kwargs)
        except Exception as error:
            reason = retry_reason(error)
            if reason is None or failures >= policy.attempts:
                metrics.observe_command(command, time.perf_counter() - started)
                metrics.count_error(command, error)
                if reason is None or isinstance(error, RedisUnavailable):
                    raise
                raise RedisUnavailable(
                    f"{command} failed after {failures} retries: {error}"
                ) from error
            failures += 1
            metrics.count_retry(reason)
            on_retry(reason)
            await asyncio.sleep(policy.backoff(failures))
        else:
            metrics.observe_command(command, time.perf_counter() - started)
            return result


# Set while a command runs inside our retry loop, so redis-py's own loop does not retry as well.
_IN_OUTER_LOOP: ContextVar[bool] = ContextVar("parley_redis_in_outer_loop", default=False)


class _OuterLoopAwareRetry(Retry):
    """redis-py's retry for pipelines and transactions; none for commands our loop already runs."""

    def get_retries(self) -> int:
        return 0 if _IN_OUTER_LOOP.get() else super().get_retries()


class ResilientRedisCluster(RedisCluster):
    """A :class:`RedisCluster` whose commands wait for a free connection and retry with backoff.

    Build it with :func:`shared.redis.client.create_client`. Pipelines keep redis-py's own retry
    (with this policy's attempts) and do not wait for a free connection; multi-key commands that
    redis-py splits by slot run as ordinary commands, one per slot, so they do wait.
    """

    def __init__(
        self,
        *,
        policy: RetryPolicy,
        pool_timeout: float,
        breaker: BreakerSettings | None = None,
        total_connections: int | None = None,
        **kwargs: Any,
    ) -> None:
        retry = _OuterLoopAwareRetry(
            EqualJitterBackoff(cap=policy.cap, base=policy.base),
            policy.attempts,
            supported_errors=(RedisConnectionError, RedisTimeoutError, ClusterDownError),
        )
        super().__init__(retry=retry, **kwargs)
        self._policy = policy
        self._pool_timeout = pool_timeout
        self._gates: dict[str, asyncio.Semaphore] = {}
        self.node_breakers = Breakers("redis", breaker)
        """One breaker per node, by ``host:port``."""
        self.slot_map_breaker = CircuitBreaker("redis:slot-map", breaker)
        """Opens when the slot map cannot be read from any node (the whole cluster is down)."""
        self._map_refreshed_at = 0.0
        self._total_connections = total_connections
        metrics.track_pools(self)

    async def initialize(
        self,
        additional_startup_nodes_info: list[tuple[str, int]] | None = None,
        last_failed_node_name: str | None = None,
    ) -> RedisCluster:
        """Read the slot map; a map that cannot be read or is incomplete is TopologyUnavailable.

        While the slot-map breaker is open this raises RedisCircuitOpen without trying.
        """
        if not self._initialize:
            return self
        breaker = self.slot_map_breaker
        if breaker.state is not CLOSED and not breaker.allow():
            raise RedisCircuitOpen(breaker.name, breaker.retry_after())
        try:
            client = await super().initialize(additional_startup_nodes_info, last_failed_node_name)
        except RedisClusterException as e:
            breaker.record_failure()
            if type(e) is not RedisClusterException:
                raise
            raise TopologyUnavailable(str(e)) from e
        except (RedisConnectionError, RedisTimeoutError, OSError):
            breaker.record_failure()
            raise
        breaker.record_success()
        self._share_connections()
        return client

    def _share_connections(self) -> None:
        """With a total bound, give each node an equal share of it (once, from the primaries
        found at start; nodes met later get the same share). One connection of the total is
        left to the startup node's, which redis-py keeps apart for reading the slot map."""
        total, self._total_connections = self._total_connections, None
        if total is None:
            return
        primaries = self.nodes_manager.get_nodes_by_server_type(PRIMARY)
        share = max(1, (total - 1) // max(1, len(primaries)))
        self.nodes_manager.connection_kwargs["max_connections"] = share
        for node in self.nodes_manager.nodes_cache.values():
            node.max_connections = share
        self._gates.clear()

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        """Run one command: wait for a connection if needed, retry transient failures."""
        token = _IN_OUTER_LOOP.set(True)
        try:
            return await run_command(
                super().execute_command, args, kwargs, self._policy, self._on_retry
            )
        finally:
            _IN_OUTER_LOOP.reset(token)

    async def _determine_slot(self, command: str, *args: Any) -> int:
        """The slot of a command; XREAD/XREADGROUP keys are read locally.

        redis-py asks the server (``COMMAND GETKEYS``) for commands with movable keys: for a
        consumer's blocking stream reads that is an extra round trip, and an extra connection,
        per read. Their keys are the first half of what follows ``STREAMS``.
        """
        if command.upper() in ("XREAD", "XREADGROUP"):
            keys = _stream_read_keys(args)
            if keys:
                slots = {self.keyslot(key) for key in keys}
                if len(slots) == 1:
                    return slots.pop()
        return int(await super()._determine_slot(command, *args))

    async def _execute_pipeline_by_slot(  # type: ignore[override]
        self, command: str, slots_to_args: Mapping[int, Iterable[EncodableT]]
    ) -> list[Any]:
        """Multi-key commands split by slot (DEL, EXISTS, UNLINK, MGET/MSET non-atomic).

        redis-py sends them as a pipeline, which fails at once on a full pool; running each slot's
        part as an ordinary command gives every part the bounded wait and the retry policy.
        """
        return list(
            await asyncio.gather(
                *(self.execute_command(command, *args) for args in slots_to_args.values())
            )
        )

    def get_node(
        self, host: str | None = None, port: int | None = None, node_name: str | None = None
    ) -> ClusterNode | None:
        """A known node; one named by an ASK redirect is added first when it is new.

        redis-py follows ``ASK`` with ``get_node(node_name=...)`` and sends ASKING to what it gets:
        a master that joined after our last slot-map refresh (a reshard towards it) is not in the
        cache yet, and it would call ASKING on None. Its MOVED path adds such a node the same way.
        """
        node = super().get_node(host, port, node_name)
        if node is None and node_name and ":" in node_name:
            new_host, _, new_port = node_name.rpartition(":")
            if new_port.isdigit():
                manager = self.nodes_manager
                node = ClusterNode(new_host, int(new_port), PRIMARY, **manager.connection_kwargs)
                manager.set_nodes(manager.nodes_cache, {node.name: node})
        return node

    def _on_retry(self, reason: str) -> None:
        if reason in ("readonly", "redirects"):
            # redis-py refreshes its map itself after connection errors and CLUSTERDOWN, not here.
            self._initialize = True
        elif reason == "breaker":
            # A node's breaker refused: a failover may have moved its slots. Re-read the map, at
            # most twice a second, so a herd of refused commands does not flood the live nodes.
            now = time.monotonic()
            if now - self._map_refreshed_at >= 0.5:
                self._map_refreshed_at = now
                self._initialize = True

    async def _execute_command(
        self, target_node: ClusterNode, *args: KeyT | EncodableT, **kwargs: Any
    ) -> Any:
        breaker = self.node_breakers.get(target_node.name)
        if breaker.state is not CLOSED and not breaker.allow():
            raise NodeCircuitOpen(breaker.name, breaker.retry_after())
        gate = self._gates.get(target_node.name)
        if gate is None:
            gate = self._gates[target_node.name] = asyncio.Semaphore(target_node.max_connections)
        if gate.locked():
            await self._wait_for_connection(gate, target_node)
        else:
            await gate.acquire()  # Free permit: returns without suspending.
        try:
            result = await self._execute_within_pool(target_node, *args, **kwargs)
        except Exception as e:
            _record(breaker, e)
            raise
        finally:
            gate.release()
        breaker.record_success()
        return result

    async def _wait_for_connection(self, gate: asyncio.Semaphore, node: ClusterNode) -> None:
        metrics.POOL_WAITS.inc()
        try:
            async with asyncio.timeout(self._pool_timeout):
                await gate.acquire()
        except TimeoutError as e:
            metrics.POOL_WAIT_TIMEOUTS.inc()
            raise PoolExhausted(
                f"no free connection to {node.name} within {self._pool_timeout}s "
                f"({node.max_connections} in use)"
            ) from e

    async def _execute_within_pool(
        self, target_node: ClusterNode, *args: KeyT | EncodableT, **kwargs: Any
    ) -> Any:
        deadline: float | None = None
        while True:
            try:
                return await super()._execute_command(target_node, *args, **kwargs)
            except (AttributeError, TypeError, RuntimeError) as e:
                if not (closed_under_us(e) or transport_closed(e)):
                    raise
                # redis-py closed this connection while we used it (see closed_under_us): the
                # command was not sent, so it is a connection failure like any other.
                raise RedisConnectionError(
                    f"connection to {target_node.name} was closed while in use"
                ) from e
            except MaxConnectionsError as e:
                # Connections taken outside the gates (pipelines, a MOVED to another node) filled
                # the pool; nothing was sent yet, so poll until one is back or the bound is hit.
                now = asyncio.get_running_loop().time()
                if deadline is None:
                    deadline = now + self._pool_timeout
                    metrics.POOL_WAITS.inc()
                if now >= deadline:
                    metrics.POOL_WAIT_TIMEOUTS.inc()
                    raise PoolExhausted(
                        f"no free connection to {target_node.name} within {self._pool_timeout}s"
                    ) from e
                await asyncio.sleep(0.005)

    async def _record_error_metric(
        self,
        error: Exception,
        connection: Any,
        is_internal: bool = True,
        retry_attempts: int | None = None,
    ) -> None:
        # redis-py calls this hook for every MOVED, ASK and TRYAGAIN it handles internally.
        if isinstance(error, MovedError):
            metrics.REDIRECTIONS.labels("moved").inc()
        elif isinstance(error, AskError):
            metrics.REDIRECTIONS.labels("ask").inc()
        elif isinstance(error, TryAgainError):
            metrics.count_retry("tryagain")
        await super()._record_error_metric(error, connection, is_internal, retry_attempts)

    def pipeline(
        self, transaction: Any | None = None, shard_hint: Any | None = None
    ) -> ClusterPipeline:
        """A pipeline that is timed and raises typed failures (redis-py retries it)."""
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # redis-py's own refusal
        return MeteredClusterPipeline(self, transaction)  # type: ignore[abstract]

    def pool_stats(self) -> Iterator[tuple[str, int, int]]:
        """``(node, open, in_use)`` per node, for the pool gauges."""
        for node in list(self.nodes_manager.nodes_cache.values()):
            opened = sum(1 for c in node._connections if c.is_connected)
            yield node.name, opened, len(node._connections) - len(node._free)


class MeteredClusterPipeline(ClusterPipeline):
    """redis-py's cluster pipeline, timed as ``PIPELINE``, failing with our typed errors.

    Multi-key commands that redis-py splits by slot (DEL, EXISTS, MGET/MSET non-atomic) run
    through it too. It keeps redis-py's own retries and does not wait for a free connection.
    """

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        """Send the queued commands; see :meth:`ClusterPipeline.execute`."""
        started = time.perf_counter()
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except MaxConnectionsError as e:
            metrics.count_error("PIPELINE", e)
            raise PoolExhausted(f"pipeline: {e}") from e
        except Exception as e:
            metrics.count_error("PIPELINE", e)
            if retry_reason(e) is None or isinstance(e, RedisUnavailable):
                raise
            raise RedisUnavailable(f"pipeline failed after retries: {e}") from e
        finally:
            metrics.observe_command("PIPELINE", time.perf_counter() - started)


class WaitingConnectionPool(BlockingConnectionPool):
    """redis-py's blocking pool, counting waits and raising :class:`PoolExhausted` at the bound."""

    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        """Lend a connection, waiting up to the pool's ``timeout`` for one to come back."""
        if not self.can_get_connection():
            metrics.POOL_WAITS.inc()
        try:
            return await super().get_connection()  # type: ignore[no-untyped-call]
        except RedisConnectionError as e:
            if not isinstance(e.__cause__, TimeoutError):
                raise
            metrics.POOL_WAIT_TIMEOUTS.inc()
            raise PoolExhausted(
                f"no free connection within {self.timeout}s ({self.max_connections} in use)"
            ) from e


class ResilientRedis(Redis):
    """A single-node :class:`Redis` with the same retry loop and metrics as the cluster client."""

    def __init__(
        self, *, policy: RetryPolicy, breaker: BreakerSettings | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._policy = policy
        kw = self.connection_pool.connection_kwargs
        self.breaker = CircuitBreaker(
            f"redis:{kw.get('host', kw.get('path', '?'))}:{kw.get('port', '')}".rstrip(":"),
            breaker,
        )
        """The server's breaker: while open, commands raise RedisCircuitOpen without a try."""
        metrics.track_pools(self)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run one command, retrying transient failures with backoff."""
        return await run_command(self._guarded, args, options, self._policy, _no_op)

    async def _guarded(self, *args: Any, **options: Any) -> Any:
        breaker = self.breaker
        if breaker.state is not CLOSED and not breaker.allow():
            raise RedisCircuitOpen(breaker.name, breaker.retry_after())
        try:
            result = await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except Exception as e:
            _record(breaker, e)
            raise
        breaker.record_success()
        return result

    def pool_stats(self) -> Iterator[tuple[str, int, int]]:
        """``(server, open, in_use)`` for the pool gauges."""
        pool = self.connection_pool
        kwargs = pool.connection_kwargs
        name = f"{kwargs.get('host', kwargs.get('path', '?'))}:{kwargs.get('port', '')}"
        free = pool._available_connections
        in_use = pool._in_use_connections
        opened = sum(1 for c in (*free, *in_use) if c.is_connected)
        yield name, opened, len(in_use)


def _record(breaker: CircuitBreaker, error: BaseException) -> None:
    """Count ``error`` against the node's breaker when it says the node cannot be reached.

    That is a failed connection attempt, or a reply that timed out. A connection lost under a
    command is not: redis-py also closes connections in use itself (see :func:`closed_under_us`),
    and the retry reconnects, failing there if the node is really gone. A full pool is this
    client's congestion. An error reply (MOVED, TRYAGAIN, CLUSTERDOWN...) proves the node answers.
    """
    if isinstance(error, RedisTimeoutError):
        breaker.record_failure()
    elif isinstance(error, RedisConnectionError | OSError):
        if " connecting to " in str(error):
            breaker.record_failure()
    elif not isinstance(error, MaxConnectionsError):
        breaker.record_success()


def _no_op(reason: str) -> None:
    """A single node has no slot map to refresh before a retry."""


def _stream_read_keys(args: tuple[Any, ...]) -> list[Any]:
    """The stream keys of XREAD/XREADGROUP arguments (``... STREAMS k1 k2 id1 id2``)."""
    for i, arg in enumerate(args):
        word = arg.decode() if isinstance(arg, bytes) else str(arg)
        if word.upper() == "STREAMS":
            rest = args[i + 1 :]
            return list(rest[: len(rest) // 2])
    return []

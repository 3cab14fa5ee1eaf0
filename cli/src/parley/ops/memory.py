"""``parley cluster memory``: MEMORY USAGE sampled per key family and per stream.

Every master's keyspace is scanned (SCAN, never KEYS); keys are grouped by family: the key with
its hash tag's content replaced by ``…`` and id-like segments by ``*``
(``chat:msg:{conv:42}:recent`` → ``chat:msg:{…}:recent``). Up to ``samples`` keys of each family
are measured with MEMORY USAGE and the family's total is estimated from their mean. Streams are
few and large, so each stream is measured on its own (with its length).
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from parley.ops.target import Target
from parley.ops.topology import Topology

_TAG = re.compile(r"\{[^}]*\}")
_ID = re.compile(r"^(?:[0-9]+|[0-9a-f]{8,}|[0-9a-f-]{32,36}|[A-Za-z0-9_-]{20,})$")


def family_of(key: str) -> str:
    """The family a key belongs to (see the module's docstring)."""
    key = _TAG.sub("{…}", key, count=1)
    return ":".join("*" if _ID.match(part) else part for part in key.split(":"))


@dataclass
class Family:
    name: str
    type: str = ""
    keys: int = 0
    sampled: int = 0
    sampled_bytes: int = 0
    _sample: list[str] = field(default_factory=list, repr=False)

    @property
    def mean_bytes(self) -> int:
        return self.sampled_bytes // self.sampled if self.sampled else 0

    @property
    def estimated_bytes(self) -> int:
        return self.mean_bytes * self.keys


@dataclass(frozen=True)
class StreamUsage:
    key: str
    length: int
    bytes: int


@dataclass(frozen=True)
class MemoryReport:
    families: list[dict[str, Any]]
    streams: list[StreamUsage]
    used_memory: int  # INFO memory of every master, summed (includes the server's own overhead)
    keys: int

    @property
    def estimated_bytes(self) -> int:
        return sum(int(f["estimated_bytes"]) for f in self.families)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "estimated_bytes": self.estimated_bytes}


def sample(target: Target, *, samples: int = 50, seed: int | None = None) -> MemoryReport:
    """Scan every master and measure a sample of each family; see the module's docstring."""
    rng = random.Random(seed)
    families: dict[str, Family] = {}
    streams: list[StreamUsage] = []
    used = 0
    for master in Topology.read(target).serving:
        with target.node(master.host, master.port) as r:
            used += int(r.info("memory").get("used_memory", 0))
            for raw in r.scan_iter(count=1000):
                key = raw.decode(errors="replace")
                fam = families.setdefault(family_of(key), Family(family_of(key)))
                fam.keys += 1
                # Reservoir sampling: every key of the family equally likely to be measured.
                if len(fam._sample) < samples:
                    fam._sample.append(key)
                elif (j := rng.randrange(fam.keys)) < samples:
                    fam._sample[j] = key
            for fam in families.values():
                for key in fam._sample:
                    kind = r.type(key)
                    if not kind or kind == b"none":
                        continue  # Not on this node (another master's family member) or expired.
                    size = int(r.memory_usage(key) or 0)
                    fam.type = kind.decode()
                    fam.sampled += 1
                    fam.sampled_bytes += size
                    if kind == b"stream":
                        streams.append(StreamUsage(key, int(r.xlen(key)), size))
                fam._sample = []
    rows = [
        {
            "family": f.name,
            "type": f.type,
            "keys": f.keys,
            "sampled": f.sampled,
            "mean_bytes": f.mean_bytes,
            "estimated_bytes": f.estimated_bytes,
        }
        for f in sorted(families.values(), key=lambda f: -f.estimated_bytes)
    ]
    return MemoryReport(
        rows, sorted(streams, key=lambda s: -s.bytes), used, sum(f.keys for f in families.values())
    )

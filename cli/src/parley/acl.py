"""The Redis ACL users of the fleet, generated from ``contracts.registry`` and the key prefixes.

``deploy/redis/users.acl`` is this module's output (``parley acl export`` writes it, ``parley acl
check`` fails when the committed file differs), so the rights and the contracts cannot drift:

* a service owns every key and channel under its prefix ``<service>:`` (DESIGN.md §1, §3);
* it reads the streams its consumer groups read (``GROUPS``) with the group commands only, may
  append to their dead-letter streams, and may append to (and trim) the streams that name it a
  sender;
* it publishes only on the channel families that name it a publisher and subscribes only to those
  that name it a subscriber; in a ``per_service`` family (replies) a subscriber gets its own
  channels only and a publisher those of the subscribing services.

Selectors ``( ... )`` hold each foreign right, so that a right on another service's stream or a
shared channel comes with only the commands it needs (a selector checks the command and all its
keys and channels together). Commands inside a script (``EVALSHA`` running ``SPUBLISH``) are
checked against the same rules when they run.

The template holds ``{{password:<user>}}`` where a password goes; deploy/redis/render-acl.sh puts
``#<sha256>`` of the mounted secret there. :class:`ClusterAcl` does the same for test clusters.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from contracts import registry
from contracts.topology import StreamSpec

__all__ = ["BASE_USERS", "ClusterAcl", "User", "fleet_users", "render", "service_user"]

# Everything a service does on its own keys: the data types, scripts, transactions and pub/sub,
# minus administration and whatever could hurt other tenants of the cluster. TIME: the scripts of
# rate limits and leases read the server's clock. SCAN and RANDOMKEY list every service's key names
# (session ids among them), whatever the key patterns say.
SERVICE_COMMANDS = (
    "-@all", "+@read", "+@write", "+@stream", "+@hash", "+@string", "+@list", "+@set",
    "+@sortedset", "+@bitmap", "+@hyperloglog", "+@keyspace", "+@scripting", "+@pubsub",
    "+@transaction", "+@connection", "-@admin", "-@dangerous", "-function|flush",
    "-function|delete", "-function|restore", "-script|flush", "-script|kill", "-function|kill",
    "+cluster|info", "+cluster|slots", "+cluster|shards", "+cluster|nodes", "+cluster|myid",
    "+cluster|keyslot", "+readonly", "+readwrite", "+command", "+command|count",
    "+command|docs", "+command|info", "+time", "-scan", "-randomkey",
)  # fmt: skip

# A consumer group on another service's stream: read, claim, acknowledge, inspect; the group's
# own state (leases, handled marks) stays under the consumer's prefix, in the same selector so
# that the acknowledging script may touch the stream and the mark together.
CONSUMER_COMMANDS = (
    "-@all", "+xreadgroup", "+xack", "+xautoclaim", "+xclaim", "+xpending", "+xinfo", "+xlen",
    "+xrange", "+xrevrange", "+exists", "+type", "+xgroup|create", "+xgroup|createconsumer",
    "+xgroup|delconsumer", "+xgroup|setid", "+eval", "+evalsha", "+evalsha_ro", "+eval_ro",
    "+fcall", "+fcall_ro",
)  # fmt: skip
APPEND_COMMANDS = ("-@all", "+xadd")
# A sender's publisher appends several entries at once with a script (XADD_MANY) and applies the
# stream's retention with another (SAFE_TRIM: XLEN, XRANGE, XINFO GROUPS, XPENDING, XTRIM), so it
# may trim what it sends to (only the senders' own commands travel there).
SEND_COMMANDS = (
    "-@all", "+xadd", "+eval", "+evalsha", "+exists", "+xlen", "+xrange", "+xinfo|groups",
    "+xpending", "+xtrim",
)  # fmt: skip
PUBLISH_COMMANDS = ("-@all", "+publish", "+spublish")
SUBSCRIBE_COMMANDS = ("-@all", "+subscribe", "+ssubscribe", "+unsubscribe", "+sunsubscribe")

# redis_exporter and container health checks: read-only, introspection only.
MONITOR_COMMANDS = (
    "-@all", "+ping", "+hello", "+auth", "+info", "+client|list", "+client|info",
    "+client|setname", "+config|get", "+cluster|info", "+cluster|nodes", "+cluster|slots",
    "+cluster|shards", "+cluster|myid", "+slowlog|get", "+slowlog|len", "+latency|latest",
    "+latency|histogram", "+memory|stats", "+dbsize", "+select", "+scan", "+type", "+xinfo",
    "+xlen", "+strlen", "+llen", "+scard", "+zcard", "+hlen", "+pfcount", "+command|docs",
    "+command|count",
)  # fmt: skip

PASSWORD = "{{password:%s}}"  # noqa: S105 - a placeholder, not a password
"""Where a user's password goes in the template (filled by render-acl.sh or ClusterAcl)."""

HEADER = """\
# Redis ACL users of the Parley cluster (loaded with `aclfile` on every node).
#
# GENERATED from contracts.registry by `parley acl export` (cli/src/parley/acl.py): do not edit;
# change the registry (streams, senders, groups, channel families) and export again.
# `parley acl check` (make contracts-check) fails when this file and the registry disagree.
#
# Placeholders {{password:<name>}} are replaced at container start by start-node.sh with
# `#<sha256 of the secret>` read from /run/secrets/redis_<name>_password: the file on disk holds
# only password hashes, and this template holds none. Every user starts from `-@all`, `resetkeys`
# and `resetchannels` and gets back only what it needs.
#
# A service owns its keys and channels (`~<service>:*`, `&<service>:*`). Each selector `( ... )`
# grants one right outside them, with only the commands it needs: consuming the streams its groups
# read, appending to their dead letters, appending to (and trimming) the command streams that name
# it a sender, publishing on and subscribing to the channel families that name it (replies: a
# caller hears only `reply:{<caller>.*}`, and only the services it calls may publish there).
"""


@dataclass(frozen=True)
class User:
    """One ACL user: its root rules and its selectors, without the password."""

    name: str
    rules: tuple[str, ...]
    selectors: tuple[tuple[str, ...], ...] = field(default=())
    comment: str = ""

    def tokens(self, password: str | None) -> list[str]:
        """The rules as ``ACL SETUSER`` / ``--user`` arguments, the password rule first after
        ``on`` (``password`` is ``#<sha256>``, ``>secret`` or the template placeholder)."""
        rules = list(self.rules)
        if password is not None and "on" in rules:
            rules.insert(rules.index("on") + 1, password)
        for selector in self.selectors:
            rules.append(f"({' '.join(selector)})")
        return rules

    def line(self) -> str:
        """The user's line in the template."""
        with_password = PASSWORD % self.name if "on" in self.rules else None
        return " ".join(["user", self.name, *self.tokens(with_password)])


BASE_USERS = (
    User(
        "default",
        ("off", "resetpass", "resetkeys", "resetchannels", "-@all"),
        comment="The default user cannot log in: every client names its user.",
    ),
    User("admin", ("on", "~*", "&*", "+@all"), comment="Operators and the init job: everything."),
    User(
        "replication",
        ("on", "resetkeys", "resetchannels", "-@all", "+psync", "+sync", "+replconf", "+ping"),
        comment="Replicas authenticate to their master with this user (masteruser/masterauth).",
    ),
    User(
        "monitor",
        ("on", "resetkeys", "resetchannels", "%R~*", *MONITOR_COMMANDS),
        comment="redis_exporter and container health checks: read-only, introspection only.",
    ),
)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _stream_pattern(spec: StreamSpec) -> str:
    # Every partition (and the dead-letter stream) of the stream: <owner>:stream:{<name>.*}.
    return f"~{spec.owner}:stream:{{{spec.name}.*}}"


def _channel_patterns(service: str, *, publish: bool) -> list[str]:
    patterns: list[str] = []
    for family in registry.CHANNELS:
        if service not in (family.publishers if publish else family.subscribers):
            continue
        if not family.per_service:
            patterns.append(family.pattern())
        elif publish:
            patterns += [family.pattern(s) for s in family.subscribers]
        else:
            patterns.append(family.pattern(service))
    return [f"&{p}" for p in _unique(patterns)]


def service_user(service: str) -> User:
    """The ACL user of ``service``, from the registry (see the module's docstring)."""
    consumed = _unique(
        name
        for group in registry.GROUPS
        if group.service == service
        for name in group.streams
        if registry.stream(name).owner != service
    )
    specs = [registry.stream(name) for name in consumed]
    sent = [s for s in registry.STREAMS if service in s.senders]
    selectors: list[tuple[str, ...]] = []
    if specs:
        streams = (_stream_pattern(s) for s in specs)
        selectors.append((*streams, f"~{service}:*", *CONSUMER_COMMANDS))
    if specs:
        selectors.append((*(f"~{s.dead_letter_key()}" for s in specs), *APPEND_COMMANDS))
    if sent:
        selectors.append((*(_stream_pattern(s) for s in sent), *SEND_COMMANDS))
    for publish, commands in ((True, PUBLISH_COMMANDS), (False, SUBSCRIBE_COMMANDS)):
        channels = _channel_patterns(service, publish=publish)
        if channels:
            selectors.append((*channels, *commands))
    rules = ("on", "resetkeys", "resetchannels", f"~{service}:*", f"&{service}:*")
    return User(service, (*rules, *SERVICE_COMMANDS), tuple(selectors))


def fleet_users() -> tuple[User, ...]:
    """Every user of the cluster: the base users, then one per service of the registry."""
    return (*BASE_USERS, *(service_user(s) for s in registry.SERVICES))


def render() -> str:
    """The text of deploy/redis/users.acl."""
    lines = [HEADER]
    for user in fleet_users():
        if user.comment:
            lines.append(f"# {user.comment}")
        lines.append(user.line())
        lines.append("")
    return "\n".join(lines)


# Users of a managed cluster (ElastiCache, Memorystore): the service users, the operators' admin
# and the exporter's monitor. The provider runs replication itself, so no replication user.
MANAGED_USERS = ("admin", "monitor", *registry.SERVICES)


def access_strings() -> dict[str, str]:
    """Each managed user's rules as one access string, without a password (the provider sets
    passwords apart): what ``aws_elasticache_user.access_string`` takes."""
    users = {u.name: u for u in fleet_users()}
    return {name: " ".join(users[name].tokens(None)) for name in MANAGED_USERS}


def render_terraform() -> str:
    """The text of deploy/terraform/aws/acl.tf.json: the same rights as users.acl, as a local of
    the Terraform module, so that ElastiCache's users cannot drift from the contracts either."""
    doc = {
        "//": "GENERATED from contracts.registry by `parley acl export`; do not edit.",
        "locals": {"redis_access_strings": access_strings()},
    }
    return json.dumps(doc, indent=2) + "\n"


@dataclass(frozen=True)
class ClusterAcl:
    """The fleet's users with a password each, for a test cluster (passwords only in memory).

    ``node_args()`` gives them to a server as ``--user`` options (hashes only; the replication
    password goes to ``--masterauth``, which a replica needs to sync when ``default`` is off).
    """

    passwords: Mapping[str, str]

    @classmethod
    def random(cls) -> ClusterAcl:
        """Fresh random passwords for every user that can log in."""
        return cls({u.name: secrets.token_hex(16) for u in fleet_users() if "on" in u.rules})

    def credentials(self, user: str) -> tuple[str, str]:
        """(username, password) of ``user``."""
        return user, self.passwords[user]

    def node_args(self) -> list[str]:
        """The server options that create every user and let replicas log in to masters."""
        args: list[str] = []
        for user in fleet_users():
            password = self.passwords.get(user.name)
            digest = None if password is None else "#" + _sha256(password)
            args += ["--user", user.name, *user.tokens(digest)]
        # A selector is one argument per word on the command line, as in a config file.
        split = [word for arg in args for word in arg.split()]
        replication = self.passwords["replication"]
        return [*split, "--masteruser", "replication", "--masterauth", replication]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()

"""Operating any Redis Cluster: inspect, grow, reshard, shrink, fail over, back up and restore.

Every operation takes a :class:`~parley.ops.target.Target` (a node URL, an ACL user and its
password, TLS with a CA file) and talks to the nodes directly with cluster administration commands
(CLUSTER MEET / SETSLOT / FAILOVER / FORGET, MIGRATE, BGSAVE, DUMP / RESTORE). ``parley cluster``
(:mod:`parley.cluster_cmd`) is the command line over it.
"""

from parley.ops.target import OpsError, Target

__all__ = ["OpsError", "Target"]

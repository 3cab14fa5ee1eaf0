#!/bin/sh
# One-shot job: form the Redis Cluster from the six nodes, once (compose service redis-cluster-init).
#
# Idempotent: a cluster already formed is left alone (exit 0 after checking it); a half-formed one
# (an interrupted earlier run) is repaired with `--cluster fix`; fresh nodes are joined with
# `--cluster create --cluster-replicas 1` (3 masters, 1 replica each). Exits 0 only once every node
# reports cluster_state:ok.
#
# Environment: PARLEY_REDIS_NODES ("host:port ..."), PARLEY_REDIS_USER (default admin) and its
# password in REDISCLI_AUTH or the file PARLEY_REDIS_PASSWORD_FILE, REDIS_CLI (default valkey-cli,
# else redis-cli), PARLEY_INIT_TIMEOUT (seconds, default 120).
set -eu

nodes=${PARLEY_REDIS_NODES:-"redis-1:6379 redis-2:6379 redis-3:6379 redis-4:6379 redis-5:6379 redis-6:6379"}
user=${PARLEY_REDIS_USER:-admin}
timeout=${PARLEY_INIT_TIMEOUT:-120}
cli=${REDIS_CLI:-valkey-cli}
command -v "$cli" >/dev/null 2>&1 || cli=redis-cli
if [ -z "${REDISCLI_AUTH:-}" ] && [ -n "${PARLEY_REDIS_PASSWORD_FILE:-}" ]; then
    REDISCLI_AUTH=$(cat "$PARLEY_REDIS_PASSWORD_FILE")
fi
export REDISCLI_AUTH

say() { echo "redis-cluster-init: $*" >&2; }
host_of() { echo "${1%:*}"; }
port_of() { echo "${1##*:}"; }
rcli() { node=$1; shift; "$cli" --no-auth-warning --user "$user" -h "$(host_of "$node")" -p "$(port_of "$node")" "$@"; }
info_field() { rcli "$1" cluster info | tr -d '\r' | sed -n "s/^$2://p"; }

deadline=$(( $(date +%s) + timeout ))
wait_until() {  # wait_until DESCRIPTION COMMAND...: retry COMMAND until it succeeds or time runs out
    what=$1; shift
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || { say "timed out waiting for $what"; return 1; }
        sleep 0.5
    done
}
all_answer() { for n in $nodes; do rcli "$n" ping 2>/dev/null | grep -q PONG || return 1; done; }
all_ok() { for n in $nodes; do [ "$(info_field "$n" cluster_state)" = ok ] || return 1; done; }
first=$(echo "$nodes" | cut -d' ' -f1)
count=$(echo "$nodes" | wc -w)

wait_until "every node to answer PING" all_answer
say "all $count nodes answer"

if all_ok && [ "$(info_field "$first" cluster_known_nodes)" -ge "$count" ]; then
    say "cluster already formed and ok: nothing to do"
    rcli "$first" --cluster check "$first"
    exit 0
fi

formed=0
for n in $nodes; do
    known=$(info_field "$n" cluster_known_nodes)
    slots=$(info_field "$n" cluster_slots_assigned)
    if [ "${known:-1}" -gt 1 ] || [ "${slots:-0}" -gt 0 ]; then formed=1; fi
done

if [ "$formed" = 1 ]; then
    say "cluster partly formed: waiting for it to settle, then repairing"
    if ! all_ok; then
        sleep 5
        all_ok || rcli "$first" --cluster fix "$first" --cluster-yes || true
    fi
else
    # CLUSTER MEET takes IP addresses: resolve the service names (hostnames are still what the
    # nodes announce to clients, through cluster-announce-hostname).
    addresses=""
    for n in $nodes; do
        host=$(host_of "$n")
        ip=$(getent hosts "$host" | awk '{print $1; exit}')
        [ -n "$ip" ] || { say "cannot resolve $host"; exit 1; }
        addresses="$addresses $ip:$(port_of "$n")"
    done
    say "creating the cluster:$addresses"
    # shellcheck disable=SC2086  # one word per node on purpose
    rcli "$first" --cluster create $addresses --cluster-replicas 1 --cluster-yes
fi

wait_until "cluster_state:ok on every node" all_ok
rcli "$first" --cluster check "$first"
say "cluster ok"

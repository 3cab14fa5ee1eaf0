#!/bin/sh
# Entry point of one cluster node container (see compose.yaml).
#
# Generates, in a private directory outside the data volume, the node's ACL file (password hashes
# only, from the mounted secrets) and a config file that includes deploy/redis/redis.conf and adds
# what differs per node or is secret: the announced hostname and the replication password. Then it
# hands over to the image's own entry point, which drops root for the server's user.
# Arguments are passed on to the server after the config file (they override it).
#
# The PARLEY_* variables exist for the deploy tests, which run this script outside a container.
set -eu

base=${PARLEY_REDIS_BASE:-/usr/local/etc/parley}
conf_dir=${PARLEY_REDIS_CONF_DIR:-/run/parley-redis}
secrets=${PARLEY_SECRETS_DIR:-/run/secrets}
hostname=${PARLEY_NODE_HOSTNAME:-$(hostname)}
data_dir=${PARLEY_REDIS_DATA_DIR:-/data}
base_conf=$base/redis.conf

mkdir -p "$conf_dir"
sh "$base/render-acl.sh" "$base/users.acl" "$secrets" > "$conf_dir/users.acl"

replication_password=$(cat "$secrets/redis_replication_password")
{
    echo "include $base_conf"
    echo "dir $data_dir"
    echo "cluster-announce-hostname $hostname"
    echo "aclfile $conf_dir/users.acl"
    echo "masterauth \"$replication_password\""
} > "$conf_dir/node.conf"

server=${PARLEY_REDIS_SERVER:-valkey-server}
command -v "$server" >/dev/null 2>&1 || server=redis-server
# The server runs as the image's unprivileged user: hand it the generated files.
if owner=$(id -u valkey 2>/dev/null || id -u redis 2>/dev/null) && [ "$(id -u)" = 0 ]; then
    chown -R "$owner" "$conf_dir"
fi
chmod 700 "$conf_dir"
chmod 600 "$conf_dir/users.acl" "$conf_dir/node.conf"

if [ "${PARLEY_REDIS_NO_ENTRYPOINT:-}" = 1 ]; then
    exec "$server" "$conf_dir/node.conf" "$@"
fi
exec docker-entrypoint.sh "$server" "$conf_dir/node.conf" "$@"

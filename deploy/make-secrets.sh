#!/bin/sh
# Create every secret compose.yaml mounts, as random values, in deploy/secrets/ (git-ignored).
# Existing files are kept, so running it again only fills in what is missing.
#
#   sh deploy/make-secrets.sh [DIR]
#
# The directory is private to its owner (0700); the files in it are 0644 because compose mounts
# file secrets as they are and the containers read them as non-root users (10001, postgres, ...).
set -eu

dir=${1:-$(dirname "$0")/secrets}
mkdir -p "$dir"
chmod 700 "$dir"

random() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }  # 48 hex chars: URL- and config-safe
key() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }  # 32 bytes, base64url
put() {  # put NAME VALUE: write the secret unless it exists
    [ -s "$dir/$1" ] && return 0
    printf '%s\n' "$2" > "$dir/$1"
    chmod 644 "$dir/$1"
    echo "created $dir/$1"
}

for user in admin replication monitor auth user chat notification gateway; do
    put "redis_${user}_password" "$(random)"
done
put postgres_password "$(random)"
for service in auth user chat notification; do
    put "postgres_${service}_password" "$(random)"
    password=$(cat "$dir/postgres_${service}_password")
    put "${service}_database_url" \
        "postgresql+asyncpg://parley_${service}:${password}@postgres:5432/parley_${service}"
done
put grafana_admin_password "$(random)"
# Auth's key-encryption key, and the earlier ones kept after a rotation (none yet: "," is empty
# for the service, but a secret file must not be). The transit keys are shared by auth and gateway.
put auth_key_encryption_key "$(key)"
put auth_old_key_encryption_keys ","
put transit_keys "t1:$(key)"

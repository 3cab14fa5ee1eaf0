#!/bin/sh
# PostgreSQL first-start script (mounted into /docker-entrypoint-initdb.d/; runs once, on an empty
# data volume). For each service in PARLEY_DATABASES it creates a login role `parley_<service>`
# with the password from /run/secrets/postgres_<service>_password and a database `parley_<service>`
# owned by it; nobody else may connect to it. (`user` is a reserved word in SQL: hence the prefix.)
set -eu

secrets=${PARLEY_SECRETS_DIR:-/run/secrets}
for service in ${PARLEY_DATABASES:-auth user chat notification}; do
    file="$secrets/postgres_${service}_password"
    [ -r "$file" ] || { echo "init-databases: missing secret $file" >&2; exit 1; }
    password=$(cat "$file")
    # psql variables (:'name' quotes a literal, :"name" an identifier): no SQL built by hand.
    psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
        -v role="parley_${service}" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"role" TO :"role";
SQL
    echo "init-databases: database parley_${service} and role parley_${service} created"
done

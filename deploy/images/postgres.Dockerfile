# PostgreSQL for compose.yaml from Debian's postgresql-15, with the entry contract of the official
# postgres image that compose relies on: POSTGRES_USER, POSTGRES_PASSWORD_FILE, the scripts of
# /docker-entrypoint-initdb.d run once on an empty data directory, data in
# /var/lib/postgresql/data, password (SCRAM) authentication over TCP.
ARG BASE_IMAGE=parley-debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]

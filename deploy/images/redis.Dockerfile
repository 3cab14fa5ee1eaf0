# Redis Cluster node for compose.yaml (redis-1 ... redis-6 and redis-cluster-init) from Debian's
# redis-server 7.0: the same entry contract as the valkey/valkey image that sites with a registry
# use (docker-entrypoint.sh drops root for the server's user; the data in /data).
ARG BASE_IMAGE=parley-debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]

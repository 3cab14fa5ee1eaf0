# redis_exporter for compose.yaml's monitoring profile from Debian's prometheus-redis-exporter, at
# the path the oliver006/redis_exporter image uses (/redis_exporter), run as nobody.
ARG BASE_IMAGE=parley-debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-redis-exporter wget \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/prometheus-redis-exporter /redis_exporter
USER nobody
EXPOSE 9121
ENTRYPOINT ["/redis_exporter"]

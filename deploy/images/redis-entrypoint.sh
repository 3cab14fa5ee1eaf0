#!/bin/sh
# Runs the server as the `redis` user, owning /data, like the official images' entry points.
set -eu
if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"

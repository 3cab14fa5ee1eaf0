#!/bin/sh
# Render the ACL template: usage render-acl.sh TEMPLATE SECRETS_DIR > users.acl
#
# Each {{password:<name>}} becomes `#<sha256 hex>` of the content of SECRETS_DIR/redis_<name>_password
# (trailing newlines dropped, as the services drop them), so the rendered file holds no password.
# Comment and blank lines are dropped too: Redis refuses anything but `user ...` lines in an aclfile.
# Fails, naming the file, when a secret is missing or empty.
set -eu

template=$1
secrets=$2
[ -r "$template" ] || { echo "render-acl: cannot read $template" >&2; exit 1; }

names=$(grep -o '{{password:[a-z0-9_-]*}}' "$template" | sed 's/{{password:\(.*\)}}/\1/' | sort -u)
script=""
for name in $names; do
    file="$secrets/redis_${name}_password"
    [ -r "$file" ] || { echo "render-acl: missing secret $file" >&2; exit 1; }
    password=$(cat "$file")
    [ -n "$password" ] || { echo "render-acl: empty secret $file" >&2; exit 1; }
    digest=$(printf '%s' "$password" | sha256sum | cut -d' ' -f1)
    script="$script s/{{password:$name}}/#$digest/g;"
done

grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$template" | sed "$script"

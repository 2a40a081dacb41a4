#!/usr/bin/env bash
# Throwaway PostgreSQL and nginx for the tests, on 127.0.0.1 in a temporary folder, installed from
# Debian when missing (issue 12: CI starts from a fresh machine).
#
#   scripts/test-services.sh install            # installs postgresql and nginx when missing
#   scripts/test-services.sh postgres DIR PORT  # starts PostgreSQL in DIR on PORT; prints its URL
#   scripts/test-services.sh stop-postgres DIR  # stops it
#
# initdb refuses to run as root, so as root the server runs as the `postgres` user the Debian
# package creates.
set -euo pipefail
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() {
    for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }; done
    command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
    return 1
}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-}" in
install)
    missing=()
    pg_bin >/dev/null || missing+=(postgresql)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    if [ ${#missing[@]} -gt 0 ]; then
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    ;;
postgres)
    dir=$2; port=$3
    bin=$(pg_bin) || { echo "PostgreSQL is not installed (scripts/test-services.sh install)" >&2; exit 1; }
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U zimage --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=off" start >/dev/null ||
        { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://zimage@127.0.0.1:$port/postgres?sslmode=disable"
    ;;
stop-postgres)
    dir=$2
    bin=$(pg_bin) || exit 0
    [ -d "$dir/data" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: $0 install | postgres DIR PORT | stop-postgres DIR" >&2
    exit 2
    ;;
esac

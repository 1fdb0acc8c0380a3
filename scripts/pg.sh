#!/bin/sh
# pg.sh: a throwaway PostgreSQL 15 for the demo and the tests.
#
#   pg.sh start DIR PORT   create (first time) and start a server in DIR
#   pg.sh stop DIR         stop it (fast shutdown)
#   pg.sh env DIR PORT     print the PGHOST/PGPORT/... lines to eval
#
# Data lives in DIR/data, the Unix socket in DIR/sock; no TCP listener.  The
# server runs as the unprivileged `postgres` user (initdb refuses root), with
# fsync and synchronous_commit on: durability is part of what is tested.
# Binaries come from /usr/lib/postgresql/15/bin (PGBIN overrides).
# start on a running server is a no-op; stop on a stopped one too.
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGUSER_OS=postgres

die() { echo "pg.sh: $*" >&2; exit 1; }

usage() {
    echo "usage: pg.sh start DIR PORT | stop DIR | env DIR PORT" >&2
    exit 2
}

# Runs a command as the postgres user when we are root; as ourselves otherwise.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$PGUSER_OS" -- "$@"
    else
        "$@"
    fi
}

abspath() {
    mkdir -p "$1"
    (cd "$1" && pwd -P)
}

# The postgres user must be able to traverse every directory down to DIR.
# Grant o+x exactly where it is missing (e.g. /root is 700) and say so.
# Checked from the root down, because a closed parent hides its children.
grant_traversal() {
    d=$1 dirs=""
    while [ "$d" != "/" ]; do
        dirs="$d
$dirs"
        d=$(dirname "$d")
    done
    echo "$dirs" | while IFS= read -r d; do
        [ -n "$d" ] || continue
        if ! as_pg test -x "$d" 2>/dev/null; then
            chmod o+x "$d"
            echo "pg.sh: notice: granted others traverse permission (o+x) on $d so that the postgres user can reach its data directory" >&2
        fi
    done
}

cmd=${1:-}
case "$cmd" in
start)
    [ $# -eq 3 ] || usage
    DIR=$(abspath "$2"); PORT=$3
    case "$PORT" in *[!0-9]*|"") die "port \"$PORT\" is not a number";; esac
    [ -x "$PGBIN/initdb" ] || die "cannot find $PGBIN/initdb (install postgresql-15, see scripts/deps.sh)"
    if [ "$(id -u)" -eq 0 ]; then
        id "$PGUSER_OS" >/dev/null 2>&1 || die "there is no \"$PGUSER_OS\" user (install postgresql-15)"
        grant_traversal "$DIR"
        install -d -o "$PGUSER_OS" -g "$PGUSER_OS" -m 700 "$DIR/data"
        install -d -o "$PGUSER_OS" -g "$PGUSER_OS" -m 755 "$DIR/sock"
    else
        install -d -m 700 "$DIR/data"
        install -d -m 755 "$DIR/sock"
    fi
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        as_pg "$PGBIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 \
            --locale=C.UTF-8 --no-sync >"$DIR/initdb.log" 2>&1 ||
            { cat "$DIR/initdb.log" >&2; die "initdb failed in $DIR/data"; }
    fi
    if as_pg "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        exit 0
    fi
    as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/data/server.log" -w -t 60 \
        -o "-p $PORT -k $DIR/sock -c listen_addresses='' -c fsync=on -c synchronous_commit=on" \
        start >/dev/null ||
        { tail -n 20 "$DIR/data/server.log" >&2 2>/dev/null; die "could not start PostgreSQL in $DIR on port $PORT"; }
    ;;
stop)
    [ $# -eq 2 ] || usage
    [ -d "$2/data" ] || exit 0
    DIR=$(abspath "$2")
    if as_pg "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w -t 60 stop >/dev/null ||
            die "could not stop PostgreSQL in $DIR"
    fi
    ;;
env)
    [ $# -eq 3 ] || usage
    DIR=$(abspath "$2")
    echo "export PGHOST='$DIR/sock' PGPORT='$3' PGUSER=postgres PGDATABASE=postgres"
    ;;
*)
    usage
    ;;
esac

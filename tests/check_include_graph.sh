#!/bin/bash
# check_include_graph: the include graph of the rooms only goes down
# (docs/architecture.md):
#
#   cli, web  ->  render  ->  report  ->  schema  ->  common
#   ingest    ->  schema  ->  common
#   agent     ->  common
#
# For every #include "x.h" of every .c and .h in a room, finds the room
# that holds x.h and fails, naming file, line and header, when that room is
# not one the including room may use.  A header name held by two rooms, or
# one found nowhere (other than the generated protobuf header), fails too,
# since the check could not tell where it points.  The CMake libraries
# enforce the same at compile time (a room sees only the include
# directories of the rooms it links); this keeps the rule readable and
# catches a relative "../x/y.h".
#
#   tests/check_include_graph.sh [SOURCE_DIR]
set -uo pipefail

SRC=${1:-$(cd "$(dirname "$0")/.." && pwd -P)}
cd "$SRC" || exit 2

declare -A DIR=(
    [common]=common [agent]=agent
    [schema]=collector/schema [ingest]=collector/ingest [report]=collector/report
    [render]=collector/render [cli]=collector/cli [web]=collector/web
    [notify]=collector/notify
)
declare -A MAY=(
    [common]="common"
    [agent]="agent common"
    [schema]="schema common"
    [ingest]="ingest schema common"
    [report]="report schema common"
    [render]="render report schema common"
    [cli]="cli render report schema common"
    [web]="web render report schema common"
    [notify]="notify report schema common"
)
GENERATED=" branchmark.pb-c.h "

declare -A OWNER=()
bad=0
for room in "${!DIR[@]}"; do
    for h in "${DIR[$room]}"/*.h; do
        [ -e "$h" ] || continue
        name=$(basename "$h")
        if [ -n "${OWNER[$name]:-}" ]; then
            echo "include graph: $name is in both ${OWNER[$name]} and $room; rename one"
            bad=1
        fi
        OWNER[$name]=$room
    done
done

checked=0
for room in "${!DIR[@]}"; do
    for f in "${DIR[$room]}"/*.c "${DIR[$room]}"/*.h; do
        [ -e "$f" ] || continue
        while IFS=: read -r line inc; do
            checked=$((checked + 1))
            name=$(basename "$inc")
            owner=${OWNER[$name]:-}
            if [ -z "$owner" ]; then
                case "$GENERATED" in *" $name "*) continue ;; esac
                echo "include graph: $f:$line includes \"$inc\", which no room holds"
                bad=1
            elif [ "$inc" != "$name" ]; then
                echo "include graph: $f:$line includes \"$inc\" by a path; include \"$name\" (CMake gives the room's directories)"
                bad=1
            elif [[ " ${MAY[$room]} " != *" $owner "* ]]; then
                echo "include graph: $f:$line: $room must not include $owner's \"$name\" (allowed: ${MAY[$room]})"
                bad=1
            fi
        done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
                 sed -E 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1:\2/')
    done
done

if [ $checked -lt 100 ]; then
    echo "include graph: only $checked includes found under $SRC; wrong directory?"
    exit 1
fi
[ $bad -eq 0 ] && echo "include graph: $checked includes in ${#DIR[@]} rooms, all going down"
exit $bad

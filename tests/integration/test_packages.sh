#!/bin/bash
# test_packages: the Debian packages of scripts/package.sh, installed,
# checked, removed and purged with the real dpkg of this machine
# (docs/packaging.md).  Needs root; skipped (77) only when not root.
#
#  1. Builds the four packages (scripts/package.sh, into build-packages/ of
#     the checkout, kept between runs so a rebuild compiles only changes;
#     the build's own lintian run is repeated here and any error or warning
#     that is not overridden fails).
#  2. Depends: every shared library a packaged program needs (readelf
#     NEEDED) belongs to a package named in its Depends: line.
#  3. dpkg -i: files, users and groups (system users, no login shell),
#     owners and modes of /etc/branchmark and /var/lib/branchmark (spool
#     and keys 0700), conffiles (dpkg-query ${Conffiles}, checksums equal
#     the files), units equal scripts/systemd/.
#  4. The programs from /usr/bin: --help; the shipped configs are accepted
#     (also with every commented default uncommented); the agent runs as
#     its user with the shipped config and writes its status; the web
#     server serves the packaged page and chart library.
#  5. systemd-analyze verify of the installed units (no output allowed), a
#     broken unit as the negative control that shows verify really checks
#     here (else the log says it could not), and the sandbox's exposure
#     (systemd-analyze security --offline) at most BM_MAX_EXPOSURE (2.0).
#  6. dpkg --remove keeps data, users and conffiles; dpkg --purge leaves
#     nothing: no package, file, user, group, statoverride or systemd
#     state, compared with a listing taken before the install.
#
# The packages are purged on any exit once installed.  The test refuses to
# run (fails) where Branchmark packages or users already exist, rather than
# purge someone's installation.  Two runs (build/ and build-asan/ under one
# ctest -j) take turns on a lock.
set -euo pipefail

TEST_NAME=test_packages
note() { echo "[$TEST_NAME +${SECONDS}s] $*"; }
fail() {
    echo "[$TEST_NAME] FAIL: $*" >&2
    exit 1
}
assert_eq() { # assert_eq DESCRIPTION EXPECTED ACTUAL
    [ "$2" = "$3" ] || fail "$1: expected \"$2\", got \"$3\""
}

if [ "$(id -u)" -ne 0 ]; then
    echo "[$TEST_NAME] skipped: dpkg -i and dpkg --purge need root"
    exit 77
fi

SRC=${BM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
OUT=${BM_PKG_OUT:-$SRC/build-packages}
MAX_EXPOSURE=${BM_MAX_EXPOSURE:-2.0}
PKGS=(branchmark-tools branchmark-agent branchmark-collector branchmark-web)
USERS=(branchmark-agent branchmark-collector branchmark-web)
UNITS=(branchmark-agent branchmark-collector branchmark-web)
for tool in dpkg dpkg-deb dpkg-query dpkg-parsechangelog lintian readelf curl setpriv flock; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/deps.sh)"
done

exec 9>/run/lock/branchmark-test-packages.lock
if ! flock -n 9; then
    note "another package test holds /run/lock/branchmark-test-packages.lock: waiting for it"
    flock 9
fi

T=$(mktemp -d /tmp/test_packages.XXXXXX)
chmod 755 "$T"
INSTALLED=0
CHECKED_CLEAN=0
WEB_PID=""
AGENT_PID=""

# Places where a package of ours could leave something.
system_listing() {
    find /etc /usr /lib /var /opt /srv -xdev \( -path "$SRC" -o -path "$OUT" -o -path /var/tmp \
        -o -path /var/cache/man \) -prune -o -name '*branchmark*' -print 2>/dev/null | sort
    getent passwd | grep '^branchmark' || true
    getent group | grep '^branchmark' || true
    dpkg-statoverride --list | grep branchmark || true
}

cleanup() {
    local rc=$?
    set +e
    [ -n "$WEB_PID" ] && kill -TERM "$WEB_PID" 2>/dev/null && wait "$WEB_PID" 2>/dev/null
    [ -n "$AGENT_PID" ] && kill -TERM "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
    if [ $INSTALLED -eq 1 ]; then
        echo "[$TEST_NAME] purging the packages after a failure" >&2
        dpkg --purge "${PKGS[@]}" >"$T/cleanup-purge.log" 2>&1 || cat "$T/cleanup-purge.log" >&2
    fi
    # After a failure, what a broken purge left: none of it existed before
    # the test (checked at the start), so the next run finds a clean machine.
    if [ $rc -ne 0 ] && [ $CHECKED_CLEAN -eq 1 ]; then
        local u
        for u in "${USERS[@]}"; do
            getent passwd "$u" >/dev/null && userdel "$u" 2>/dev/null
            getent group "$u" >/dev/null && groupdel "$u" 2>/dev/null
        done
        dpkg-statoverride --remove /etc/branchmark/collector.conf >/dev/null 2>&1
        rm -rf /var/lib/branchmark /etc/branchmark
    fi
    # man pages formatted for systemd-analyze's check of Documentation=
    # (man-db's cache, not the packages' files).
    rm -f /var/cache/man/cat1/branchmark*.1.gz
    rm -rf "$T"
    [ $rc -eq 0 ] && note "PASS"
    exit $rc
}
trap cleanup EXIT
trap 'echo "[$TEST_NAME] FAIL: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- before
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ -z "$st" ] || [ "$st" = not-installed ] ||
        fail "$p is already on this machine (status $st): not touching an existing installation"
done
for u in "${USERS[@]}"; do
    getent passwd "$u" >/dev/null && fail "user $u already exists: not touching an existing installation"
done
[ -e /var/lib/branchmark ] && fail "/var/lib/branchmark already exists: not touching an existing installation"
[ -e /etc/branchmark ] && fail "/etc/branchmark already exists: not touching an existing installation"
system_listing >"$T/before.list"
CHECKED_CLEAN=1

# ---------------------------------------------------------------- 1. build
t0=$SECONDS
"$SRC/scripts/package.sh" "$OUT" >"$T/package.log" 2>&1 || {
    cat "$T/package.log" >&2
    fail "scripts/package.sh failed"
}
version=$(dpkg-parsechangelog -l "$SRC/scripts/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
declare -A DEB=()
for p in "${PKGS[@]}"; do
    DEB[$p]=$OUT/${p}_${version}_${arch}.deb
    [ -s "${DEB[$p]}" ] || fail "scripts/package.sh made no ${DEB[$p]}"
done
note "built the packages in $((SECONDS - t0)) s"
T_AFTER_BUILD=$SECONDS

if ! lintian --fail-on error,warning --display-info --show-overrides "${DEB[@]}" >"$T/lintian.log" 2>&1; then
    cat "$T/lintian.log" >&2
    fail "lintian: errors or warnings that are not overridden"
fi
note "lintian: no error or warning; overrides and notes:"
grep -v '^N: *$' "$T/lintian.log" | grep -v 'running with root privileges' | sed 's/^/    /' || true

for p in "${PKGS[@]}"; do
    note "$p: $(dpkg-deb -f "${DEB[$p]}" Depends)"
done

# ---------------------------------------------------------------- 2. Depends
# Each NEEDED library of each packaged program must come from a package
# that the Depends: line names (dpkg-shlibdeps made it; this checks it).
for p in "${PKGS[@]}"; do
    mkdir -p "$T/x/$p"
    dpkg-deb -x "${DEB[$p]}" "$T/x/$p"
    depends=$(dpkg-deb -f "${DEB[$p]}" Depends | tr ',|' '\n\n' | sed 's/(.*//; s/ //g; s/:.*//')
    for bin in "$T/x/$p"/usr/bin/*; do
        for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            path=$(ldconfig -p | awk -v l="$lib" '$1 == l && $NF ~ /^\// && !p { p = $NF } END { print p }')
            [ -n "$path" ] || fail "$p: $(basename "$bin") needs $lib, which this machine does not have"
            owner=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | sed -n '1s/:.*//p' || true)
            [ -n "$owner" ] || owner=$(dpkg -S "$path" 2>/dev/null | sed -n '1s/:.*//p' || true)
            [ -n "$owner" ] || fail "$p: no package owns $path ($lib)"
            grep -qx "$owner" <<<"$depends" ||
                fail "$p: $(basename "$bin") needs $lib from $owner, which Depends does not name"
        done
    done
done
grep -qx 'adduser' <<<"$(dpkg-deb -f "${DEB[branchmark-agent]}" Depends | tr ',' '\n' | sed 's/ //g')" ||
    fail "branchmark-agent: Depends lacks adduser (its postinst calls it)"
note "Depends: every NEEDED library of every program is covered"

# ---------------------------------------------------------------- 3. install
INSTALLED=1
dpkg -i "${DEB[@]}" >"$T/install.log" 2>&1 || {
    cat "$T/install.log" >&2
    fail "dpkg -i failed"
}
for p in "${PKGS[@]}"; do
    assert_eq "dpkg status of $p" "install ok installed" "$(dpkg-query -W -f='${Status}' "$p")"
done
note "installed: ${PKGS[*]}"

# assert_mode MODE OWNER:GROUP PATH
assert_mode() {
    [ -e "$3" ] || fail "$3 is missing"
    assert_eq "owner and mode of $3" "$1 $2" "$(stat -c '%a %U:%G' "$3")"
}
for b in branchmark branchmark-agent branchmark-collector branchmark-web; do
    assert_mode 755 root:root "/usr/bin/$b"
    [ -s "/usr/share/man/man1/$b.1.gz" ] || fail "/usr/share/man/man1/$b.1.gz is missing"
done
for f in index.html assets/app.js assets/app.css vendor/chart.umd.js; do
    assert_mode 644 root:root "/usr/share/branchmark/web/$f"
    [ -s "/usr/share/branchmark/web/$f" ] || fail "/usr/share/branchmark/web/$f is empty"
done
cmp -s "$SRC/collector/web/index.html" /usr/share/branchmark/web/index.html ||
    fail "the packaged index.html is not collector/web/index.html"
for u in "${UNITS[@]}"; do
    assert_mode 644 root:root "/lib/systemd/system/$u.service"
    cmp -s "$SRC/scripts/systemd/$u.service" "/lib/systemd/system/$u.service" ||
        fail "the packaged $u.service differs from scripts/systemd/$u.service"
done

for u in "${USERS[@]}"; do
    entry=$(getent passwd "$u") || fail "user $u was not created"
    uid=$(cut -d: -f3 <<<"$entry")
    [ "$uid" -lt 1000 ] || fail "$u is not a system user (uid $uid)"
    assert_eq "login shell of $u" /usr/sbin/nologin "$(cut -d: -f7 <<<"$entry")"
    assert_eq "primary group of $u" "$u" "$(id -gn "$u")"
done
assert_eq "home of branchmark-agent" /var/lib/branchmark/agent "$(getent passwd branchmark-agent | cut -d: -f6)"
assert_eq "home of branchmark-collector" /var/lib/branchmark/collector "$(getent passwd branchmark-collector | cut -d: -f6)"

assert_mode 755 root:root /etc/branchmark
assert_mode 644 root:root /etc/branchmark/agent.conf
assert_mode 640 root:branchmark-collector /etc/branchmark/collector.conf
assert_mode 644 root:root /etc/branchmark/web.conf
assert_mode 755 root:root /var/lib/branchmark
assert_mode 750 branchmark-agent:branchmark-agent /var/lib/branchmark/agent
assert_mode 700 branchmark-agent:branchmark-agent /var/lib/branchmark/agent/spool
assert_mode 700 branchmark-agent:branchmark-agent /var/lib/branchmark/agent/keys
assert_mode 2770 branchmark-agent:branchmark-agent /var/lib/branchmark/agent/inbox
assert_mode 750 branchmark-collector:branchmark-collector /var/lib/branchmark/collector
assert_mode 700 branchmark-collector:branchmark-collector /var/lib/branchmark/collector/keys
assert_mode 600 branchmark-collector:branchmark-collector /var/lib/branchmark/collector/keys/collector.key
assert_mode 644 branchmark-collector:branchmark-collector /var/lib/branchmark/collector/keys/collector.pub
grep -Eqx '[]0-9A-Za-z.:+=^!/*?&<>()@%{}$#[-]{40}' /var/lib/branchmark/collector/keys/collector.pub ||
    fail "collector.pub does not hold a Z85 key"
note "files, users, owners and modes are right"

# conffiles: exactly the config files, with the checksums of the files.
check_conffiles() { # check_conffiles PACKAGE FILE...
    local p=$1 got want=""
    shift
    got=$(dpkg-query -W -f='${Conffiles}\n' "$p" | sed '/^$/d; s/^ //' | sort)
    local f
    for f in "$@"; do
        want+="$f $(md5sum <"$f" | cut -d' ' -f1)"$'\n'
    done
    assert_eq "conffiles of $p" "$(printf '%s' "$want" | sort)" "$got"
}
check_conffiles branchmark-agent /etc/branchmark/agent.conf
check_conffiles branchmark-collector /etc/branchmark/collector.conf
check_conffiles branchmark-web /etc/branchmark/web.conf
check_conffiles branchmark-tools
note "conffiles: agent.conf, collector.conf, web.conf, checksums match"

# ---------------------------------------------------------------- 4. programs
for b in branchmark-agent branchmark; do
    /usr/bin/$b --help >"$T/$b.help" 2>&1 || fail "/usr/bin/$b --help exited non-zero"
    grep -q '^usage: ' "$T/$b.help" || fail "/usr/bin/$b --help printed no usage"
done
/usr/bin/branchmark-collector --help >/dev/null || fail "/usr/bin/branchmark-collector --help failed"
/usr/bin/branchmark-web --help >/dev/null || fail "/usr/bin/branchmark-web --help failed"
note "/usr/bin/branchmark-agent --help and /usr/bin/branchmark --help work"

# as_user USER COMMAND...: runs COMMAND as USER the way systemd's User=
# does (setpriv execs it: no PAM session, no wrapper process in between).
# Background processes are started with "${AS_<USER>[@]}" directly, not
# through the function, so that $! is the program itself and SIGTERM
# reaches it (a function in the background is a subshell of its own).
as_user() {
    local u=$1
    shift
    setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"
}
AS_AGENT=(setpriv --reuid=branchmark-agent --regid=branchmark-agent --init-groups --)
AS_WEB=(setpriv --reuid=branchmark-web --regid=branchmark-web --init-groups --)

# The shipped configs are accepted: `status` loads the config first (exit 2
# on a bad one) and then finds no status file (exit 1).  The same with
# every commented-out default made real: the defaults are valid values.
check_config() { # check_config PROGRAM USER FILE WHAT
    local rc=0
    as_user "$2" "/usr/bin/$1" status -c "$3" >"$T/status.out" 2>&1 || rc=$?
    [ $rc -eq 1 ] || { cat "$T/status.out" >&2; fail "$1 status -c $3 ($4): exit $rc, expected 1 (not running)"; }
}
uncomment() { # uncomment FILE OUT: every "#key = value" becomes "key = value"
    sed -E 's/^#([a-z_]+ = .+)$/\1/' "$1" >"$2"
    chmod 644 "$2"
}
check_config branchmark-agent branchmark-agent /etc/branchmark/agent.conf "as shipped"
uncomment /etc/branchmark/agent.conf "$T/agent-defaults.conf"
check_config branchmark-agent branchmark-agent "$T/agent-defaults.conf" "every default set"
check_config branchmark-collector branchmark-collector /etc/branchmark/collector.conf "as shipped"
uncomment /etc/branchmark/collector.conf "$T/collector-defaults.conf"
check_config branchmark-collector branchmark-collector "$T/collector-defaults.conf" "every default set"
note "the shipped agent.conf and collector.conf are accepted, also with every default uncommented"

# poll_until DESCRIPTION TIMEOUT_S PID COMMAND...: polls a condition; a
# dead PID fails at once.
poll_until() {
    local what=$1 deadline=$((SECONDS + $2)) pid=$3
    shift 3
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || fail "the process exited while waiting until $what"
        [ $SECONDS -lt $deadline ] || fail "timed out waiting until $what"
        sleep 0.1
    done
}
# stop_pid PID NAME LOG: SIGTERM and expect a clean exit (0).
stop_pid() {
    local rc=0
    kill -TERM "$1"
    wait "$1" || rc=$?
    [ $rc -eq 0 ] || { tail -n 20 "$3" >&2; fail "$2 exited with status $rc on SIGTERM"; }
}

# The agent as its user, with the shipped config: its data directory works.
"${AS_AGENT[@]}" /usr/bin/branchmark-agent -c /etc/branchmark/agent.conf \
    >"$T/agent.log" 2>&1 &
AGENT_PID=$!
poll_until "the agent reports itself running" 20 "$AGENT_PID" \
    /usr/bin/branchmark-agent status -c /etc/branchmark/agent.conf
stop_pid "$AGENT_PID" branchmark-agent "$T/agent.log"
AGENT_PID=""
rc=0
/usr/bin/branchmark-agent status -c /etc/branchmark/agent.conf >/dev/null 2>&1 || rc=$?
assert_eq "agent status after SIGTERM (1 = not running)" 1 $rc
assert_eq "owner of the agent's status.json" branchmark-agent \
    "$(stat -c %U /var/lib/branchmark/agent/status.json)"
assert_mode 700 branchmark-agent:branchmark-agent /var/lib/branchmark/agent/spool
note "the agent ran as branchmark-agent with the shipped config and stopped cleanly"

# The web server as its user, with the shipped config on a free port: it
# serves the packaged page and chart library.
mkdir -p /tmp/bm-test-ports
port=""
for _ in $(seq 1 200); do
    p=$((31000 + RANDOM % 1000))
    exec {pfd}>"/tmp/bm-test-ports/$p.lock"
    if flock -n "$pfd" && ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        port=$p
        break
    fi
    exec {pfd}>&-
done
[ -n "$port" ] || fail "no free TCP port in 31000-31999"
cp /etc/branchmark/web.conf "$T/web.conf"
echo "port = $port" >>"$T/web.conf"
chmod 644 "$T/web.conf"
"${AS_WEB[@]}" /usr/bin/branchmark-web -c "$T/web.conf" >"$T/web.log" 2>&1 &
WEB_PID=$!
poll_until "branchmark-web answers on port $port" 20 "$WEB_PID" \
    curl -sf -o /dev/null "http://127.0.0.1:$port/api/health"
curl -sf -o "$T/index.html" "http://127.0.0.1:$port/" || fail "GET / failed"
cmp -s "$T/index.html" /usr/share/branchmark/web/index.html || fail "GET / is not the packaged index.html"
curl -sf -o "$T/chart.umd.js" "http://127.0.0.1:$port/vendor/chart.umd.js" ||
    fail "GET /vendor/chart.umd.js failed"
cmp -s "$T/chart.umd.js" /usr/share/branchmark/web/vendor/chart.umd.js ||
    fail "GET /vendor/chart.umd.js is not the packaged chart library"
stop_pid "$WEB_PID" branchmark-web "$T/web.log"
WEB_PID=""
note "branchmark-web ran as branchmark-web with the shipped config and served the packaged page"

# ---------------------------------------------------------------- 5. units
units=()
for u in "${UNITS[@]}"; do units+=("/lib/systemd/system/$u.service"); done
# Negative control first: a unit whose program does not exist must fail.
sed 's|^ExecStart=/usr/bin/branchmark-agent|ExecStart=/usr/bin/branchmark-agent-missing|' \
    /lib/systemd/system/branchmark-agent.service >"$T/bm-broken.service"
verify_rc=0
systemd-analyze verify "$T/bm-broken.service" >"$T/verify-broken.log" 2>&1 || verify_rc=$?
if ! command -v systemd-analyze >/dev/null; then
    note "NOT CHECKED: systemd-analyze is not installed (scripts/deps.sh installs systemd)"
elif [ $verify_rc -eq 0 ] || ! grep -q 'branchmark-agent-missing' "$T/verify-broken.log"; then
    note "NOT CHECKED: systemd-analyze verify cannot check units here (a unit with a missing program passed: $(head -c 300 "$T/verify-broken.log"))"
else
    rc=0
    systemd-analyze verify "${units[@]}" >"$T/verify.log" 2>&1 || rc=$?
    if [ $rc -ne 0 ] || [ -s "$T/verify.log" ]; then
        cat "$T/verify.log" >&2
        fail "systemd-analyze verify of the installed units: exit $rc (any output counts as a failure)"
    fi
    note "systemd-analyze verify: the three units are clean (and a broken unit is caught)"
fi
for u in "${units[@]}"; do
    if ! systemd-analyze security --offline=true "$u" >"$T/security.log" 2>&1; then
        note "NOT CHECKED: systemd-analyze security --offline cannot run here: $(tail -n 1 "$T/security.log")"
        break
    fi
    exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T/security.log")
    [ -n "$exposure" ] || { cat "$T/security.log" >&2; fail "no exposure level for $u"; }
    awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }' ||
        fail "$(basename "$u"): exposure $exposure is above $MAX_EXPOSURE (systemd-analyze security $u)"
    note "$(basename "$u"): exposure $exposure (at most $MAX_EXPOSURE)"
done

# ---------------------------------------------------------------- 6. remove, purge
dpkg --remove "${PKGS[@]}" >"$T/remove.log" 2>&1 || { cat "$T/remove.log" >&2; fail "dpkg --remove failed"; }
for b in branchmark branchmark-agent branchmark-collector branchmark-web; do
    [ ! -e "/usr/bin/$b" ] || fail "/usr/bin/$b is still there after dpkg --remove"
done
[ -d /var/lib/branchmark/agent/spool ] || fail "dpkg --remove deleted the agent's spool (only purge may)"
[ -f /var/lib/branchmark/collector/keys/collector.key ] || fail "dpkg --remove deleted the collector's key"
[ -f /etc/branchmark/agent.conf ] || fail "dpkg --remove deleted agent.conf (a conffile stays until purge)"
for u in "${USERS[@]}"; do
    getent passwd "$u" >/dev/null || fail "dpkg --remove deleted user $u (only purge may)"
done
note "dpkg --remove: programs gone; data, keys, conffiles and users kept"

dpkg --purge "${PKGS[@]}" >"$T/purge.log" 2>&1 || { cat "$T/purge.log" >&2; fail "dpkg --purge failed"; }
INSTALLED=0
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ -z "$st" ] || [ "$st" = not-installed ] || fail "$p is still known to dpkg after purge (status $st)"
done
rm -f /var/cache/man/cat1/branchmark*.1.gz
system_listing >"$T/after.list"
if ! diff -u "$T/before.list" "$T/after.list" >"$T/left.diff"; then
    cat "$T/left.diff" >&2
    fail "dpkg --purge left something behind (lines with + above)"
fi
[ ! -e /var/lib/branchmark ] || fail "/var/lib/branchmark is still there after purge"
[ ! -e /etc/branchmark ] || fail "/etc/branchmark is still there after purge"
note "dpkg --purge: no package, file, user, group, statoverride or systemd state left"
note "$((SECONDS - T_AFTER_BUILD)) s after the build"

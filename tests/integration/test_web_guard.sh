#!/bin/bash
# test_web_guard: branchmark-web against a hostile network (issue 16),
# real PostgreSQL with scram passwords, a real server, real TCP clients.
#  1. Brute force: 40 wrong logins at once for one account reach
#     PostgreSQL at most max_failed_logins times (counted in the server
#     log's authentication failures); the rest get 429 with Retry-After.
#  2. The attacker's own good logins do not reset the address: 3 wrong for
#     a victim, 1 right for the attacker's account, 2 wrong: locked, and
#     the attacker's right password gets 429 too; another address is not
#     locked for the attacker's account.
#  3. Exhaustion: 120 logins of one regional manager leave at most
#     max_sessions_per_user sessions (oldest closed) and as many
#     PostgreSQL connections; an HQ login and the collector's role still
#     connect.
#  4. Slow loris: 80 connections trickling a header line every 2 s for
#     40 s from one address; /api/health, polled from another address,
#     answers >= 80% of polls, and the server closes the stalled requests.
#  5. Login CSRF: POST /api/login and /api/logout with a foreign Origin
#     get 403 without reaching PostgreSQL; this site's own Origin works.
source "$(dirname "$0")/lib.sh"

BM_WEB=$BM_BUILD_DIR/collector/branchmark-web
SLOW=$BM_BUILD_DIR/tests/bm-slowclient
command -v curl >/dev/null || fail "curl is not installed (scripts/deps.sh)"

bm_load_refdata --branches 2 --regions 1 --competitors 1 --days 1 --scale 0.05
REGION=$(bm_psql "SELECT code FROM regions ORDER BY code LIMIT 1")
adduser() { # adduser NAME PASSWORD ROLE...
    local name=$1 pw=$2
    shift 2
    BM_USER_PASSWORD=$pw "$BM_TOOL" user add "$name" "$@" --db "$BM_DB" >>"$T/user.log" 2>&1 ||
        { cat "$T/user.log"; fail "user add $name"; }
}
adduser victim victim-pw-1 --role hq
adduser victim2 victim-pw-2 --role hq
adduser mallory mallory-pw-1 --role regional --region "$REGION"
adduser north north-pw-1 --role regional --region "$REGION"
adduser hq hq-pass-1 --role hq
adduser bm_col collector-pw-1 --role collector
printf 'local all postgres trust\nlocal all all scram-sha-256\n' >"$T/pg/data/pg_hba.conf"
bm_psql "SELECT pg_reload_conf()" >/dev/null
WEB_DB="host=$T/pg/sock port=$BM_PG_PORT dbname=branchmark"
PGLOG=$T/pg/data/server.log
auth_failures() { grep -c "password authentication failed for user \"$1\"" "$PGLOG" || true; }

LIMIT=5
bm_pick_port WPORT
mkdir -p "$T/static"
echo '<!doctype html><title>t</title>' >"$T/static/index.html"
cat >"$T/web.conf" <<EOF
database = "$WEB_DB"
listen_address = 127.0.0.1
port = $WPORT
static_dir = $T/static
max_sessions = 20
max_sessions_per_user = 3
max_failed_logins = $LIMIT
login_lockout = 60s
max_connections = 200
max_connections_per_ip = 16
request_deadline = 3s
log_level = info
EOF
bm_run_bg web "$BM_WEB" -c "$T/web.conf"
URL=http://127.0.0.1:$WPORT
wait_until "branchmark-web answers /api/health" 30 curl -sf "$URL/api/health"

login() { # login USER PASSWORD SOURCE_ADDRESS [curl args]: prints the status
    local user=$1 pw=$2 src=$3
    shift 3
    curl -s -o /dev/null -w '%{http_code}' --interface "$src" -X POST \
        -H 'Content-Type: application/json' \
        --data-binary "{\"user\": \"$user\", \"password\": \"$pw\"}" "$@" "$URL/api/login"
}

# ------------------------------------------------------- 1. brute force
before=$(auth_failures victim)
pids=()
for i in $(seq 40); do
    login victim "guess-$i" 127.0.0.2 >"$T/bf.$i" &
    pids+=($!)
done
wait "${pids[@]}" || true    # only these (the server runs in the background too); a refused
                             # connection is curl exit 7, counted below as 000
reached=$(( $(auth_failures victim) - before ))
answers() { grep -lx "$1" "$T"/bf.* | wc -l || true; }   # no match: 0, not an exit
n401=$(answers 401)
n429=$(answers 429)
n000=$(answers 000)    # refused at max_connections_per_ip
note "40 parallel wrong logins: $reached reached PostgreSQL, $n401 got 401, $n429 got 429," \
    "$n000 were refused a connection (max_connections_per_ip)"
[ "$reached" -le $LIMIT ] || fail "$reached guesses reached PostgreSQL (limit $LIMIT)"
[ "$reached" -ge 1 ] || fail "no guess reached PostgreSQL: the test proves nothing"
assert_eq "every attempt got 401, 429 or no connection" 40 $((n401 + n429 + n000))
assert_eq "401s are the guesses that reached PostgreSQL" "$reached" "$n401"
hdr=$(curl -s -D - -o /dev/null --interface 127.0.0.2 -X POST -H 'Content-Type: application/json' \
    --data-binary '{"user": "victim", "password": "victim-pw-1"}' "$URL/api/login")
grep -q '^HTTP/1.1 429' <<<"$hdr" || fail "the right password during the lock-out: $hdr"
grep -qi '^Retry-After: [0-9]' <<<"$hdr" || fail "no Retry-After: $hdr"
grep -q 'level=warn .*comp=login .*address 127.0.0.2 locked out for 60 s' "$T/web.log" ||
    fail "no lock-out in the log: $(grep comp=login "$T/web.log" | tail -n 3)"

# ------------------------------------------------------- 2. own good logins
# (victim's own account is locked by now: guess at victim2.)
for i in 1 2 3; do assert_eq "victim2 guess $i" 401 "$(login victim2 "x$i" 127.0.0.3)"; done
assert_eq "attacker's own login" 200 "$(login mallory mallory-pw-1 127.0.0.3)"
for i in 4 5; do assert_eq "victim2 guess $i" 401 "$(login victim2 "x$i" 127.0.0.3)"; done
assert_eq "attacker's own login after 5 failures" 429 "$(login mallory mallory-pw-1 127.0.0.3)"
assert_eq "the account is not locked from elsewhere" 200 "$(login mallory mallory-pw-1 127.0.0.4)"

# ------------------------------------------------------- 3. exhaustion
ok=0
for i in $(seq 120); do
    [ "$(login north north-pw-1 127.0.0.5)" = 200 ] && ok=$((ok + 1))
done
assert_eq "120 logins of one person succeed (each closes the oldest)" 120 $ok
conns=$(bm_psql "SELECT count(*) FROM pg_stat_activity WHERE usename = 'north'")
[ "$conns" -le 3 ] || fail "north holds $conns PostgreSQL connections (max_sessions_per_user = 3)"
assert_eq "HQ can still log in" 200 "$(login hq hq-pass-1 127.0.0.6)"
PGPASSWORD=collector-pw-1 psql -X -q -d "$WEB_DB user=bm_col" -c 'SELECT 1' >/dev/null ||
    fail "the collector's role cannot connect"
note "120 logins of one person: $conns PostgreSQL connections held; HQ and the collector connect"

# ------------------------------------------------------- 4. slow loris
"$SLOW" 127.0.0.1 "$WPORT" 80 40 2000 >"$T/slow.out" &
slow_pid=$!
# 76 polls at 2 a second (curl paces them: --rate), each on a new
# connection, each given 2 s, all while the slow clients hold on.
curl -s --rate 2/s --max-time 2 --interface 127.0.0.7 -H 'Connection: close' -o /dev/null \
    -w '%{http_code}\n' "$URL/api/health?poll=[1-76]" >"$T/polls" || true
wait "$slow_pid"
polls=$(grep -c . "$T/polls" || true)
good=$(grep -c '^200$' "$T/polls" || true)
note "slow loris: $(cat "$T/slow.out"); health answered $good of $polls polls"
[ "$polls" -ge 70 ] || fail "only $polls health polls were made"
[ $((good * 100)) -ge $((polls * 80)) ] || fail "health answered only $good of $polls polls"
closed=$(sed -n 's/.*closed_by_server=\([0-9]*\).*/\1/p' "$T/slow.out")
[ "${closed:-0}" -ge 64 ] || fail "the server closed only ${closed:-0} stalled connections"

# ------------------------------------------------------- 5. login CSRF
before=$(auth_failures hq)
assert_eq "login with a foreign Origin" 403 "$(login hq wrong 127.0.0.8 -H 'Origin: http://evil.example')"
assert_eq "login with a foreign Referer" 403 \
    "$(login hq wrong 127.0.0.8 -H 'Referer: http://evil.example/page')"
assert_eq "the refused logins did not reach PostgreSQL" "$before" "$(auth_failures hq)"
assert_eq "login with this site's Origin" 200 \
    "$(login hq hq-pass-1 127.0.0.8 -H "Origin: http://127.0.0.1:$WPORT")"
code=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.8 -X POST \
    -H 'Origin: http://evil.example' "$URL/api/logout")
assert_eq "logout with a foreign Origin" 403 "$code"

stop_proc web || fail "branchmark-web did not stop cleanly"
note "PASS"

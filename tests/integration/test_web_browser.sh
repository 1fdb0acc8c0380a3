#!/bin/bash
# test_web_browser: the HQ dashboard in headless Chromium against a real
# branchmark-web and PostgreSQL (tests/browser/dashboard.test.mjs says what
# the browser checks: sign-in, region picker, ranking with intervals, tie
# groups and low-n marks equal to the API, CSV exports, a scorecard with
# drawn trend and competitor-gap charts, early warnings, a regional user on
# a phone-sized screen who sees only its region, no request leaving the
# server, markup in data shown as text).
#
# Set-up: generated chain data delivered by real agents, evaluations
# approved, an HQ and a regional (NORTH) login checked by PostgreSQL with
# SCRAM passwords, surveys added so that one branch has an early warning,
# one branch renamed to contain HTML, the page assembled by
# scripts/web-vendor.sh (Chart.js from npm, pinned), playwright-core
# installed with `npm ci` from tests/browser/package-lock.json into the
# build tree.  Screenshots: $BM_BUILD_DIR/test-artifacts/*.png (printed).
#
# Skips (exit 77) only when Chromium is missing (BM_CHROMIUM, default
# /usr/bin/chromium); a missing node or npm is a failure (scripts/deps.sh
# installs them).
BM_CHROMIUM=${BM_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$BM_CHROMIUM" ]; then
    echo "[test_web_browser] SKIPPED: Chromium not found at $BM_CHROMIUM (scripts/deps.sh installs Debian's chromium)"
    exit 77
fi

source "$(dirname "$0")/lib.sh"

BM_WEB=$BM_BUILD_DIR/collector/branchmark-web
[ -x "$BM_WEB" ] || fail "$BM_WEB is not built"
command -v node >/dev/null || fail "node is not installed (scripts/deps.sh)"
command -v npm >/dev/null || fail "npm is not installed (scripts/deps.sh)"
BRANCHES=(B001 B002 B003 B004 B005 B006)

# --------------------------------------------- the page and the test's npm

"$BM_SOURCE_DIR/scripts/web-vendor.sh" "$BM_BUILD_DIR" >"$T/web-vendor.log" 2>&1 ||
    { cat "$T/web-vendor.log"; fail "scripts/web-vendor.sh failed"; }
STATIC=$BM_BUILD_DIR/web
[ -s "$STATIC/vendor/chart.umd.js" ] || fail "web-vendor.sh left no $STATIC/vendor/chart.umd.js"

# playwright-core at the lock's version, in the build tree (npm cache
# there too); npm runs again only when the lock changed.  The test script is
# copied next to its node_modules so `import 'playwright-core'` resolves.
NPM_DIR=$BM_BUILD_DIR/browser-test
mkdir -p "$NPM_DIR"
if ! cmp -s "$BM_SOURCE_DIR/tests/browser/package-lock.json" "$NPM_DIR/stamp.lock" ||
    [ ! -f "$NPM_DIR/node_modules/playwright-core/package.json" ]; then
    rm -f "$NPM_DIR/stamp.lock"
    cp "$BM_SOURCE_DIR/tests/browser/package.json" "$BM_SOURCE_DIR/tests/browser/package-lock.json" "$NPM_DIR/"
    (cd "$NPM_DIR" && npm ci --cache "$NPM_DIR/cache" --prefer-offline --ignore-scripts \
        --no-audit --no-fund --update-notifier=false --loglevel=error) >"$T/npm-ci.log" 2>&1 ||
        { cat "$T/npm-ci.log"; fail "npm ci of tests/browser failed (is the npm registry reachable?)"; }
    cp "$BM_SOURCE_DIR/tests/browser/package-lock.json" "$NPM_DIR/stamp.lock"
fi
cp "$BM_SOURCE_DIR/tests/browser/dashboard.test.mjs" "$NPM_DIR/"
note "page assembled in $STATIC; playwright-core ready in $NPM_DIR"

# ------------------------------------------------------------------ data

# The data ends on the 20th of the last month of the latest finished
# quarter, whatever today is: the latest month always has 20 days of data and
# the latest quarter (competitor gaps) 70, so the views look alike on every
# run.
y=$(date -u +%Y)
qm=$(( (10#$(date -u +%m) - 1) / 3 * 3 ))
if [ $qm -eq 0 ]; then
    y=$((y - 1))
    qm=12
fi
END=$(printf '%04d-%02d-20' "$y" "$qm")
bm_load_generated ${#BRANCHES[@]} --regions 2 --competitors 2 --days 70 --end "$END" --scale 0.03 --seed 5
expected=$BM_LOADED
# An early warning to show: B001's customers turn from promoters (last
# month) to detractors (this month), so NPS and CSI fall by far more than
# 3 standard errors (rollups follow through their insert triggers).
ALERT_BRANCH=B001
bm_psql "INSERT INTO survey_responses (branch_id, source_id, responded_at, nps, csi)
    SELECT b.id, 'page-test-' || g,
           CASE WHEN g <= 40 THEN m.t - interval '35 days' - g * interval '1 hour'
                ELSE m.t - g * interval '5 minutes' END,
           CASE WHEN g <= 40 THEN 9 + g % 2 WHEN g % 5 = 0 THEN 9 ELSE 2 END,
           CASE WHEN g <= 40 THEN 80 ELSE 30 END
      FROM branches b, generate_series(1, 80) g, (SELECT max(responded_at) AS t FROM survey_responses) m
     WHERE b.code = '$ALERT_BRANCH'" >/dev/null || fail "adding the surveys of $ALERT_BRANCH"
# A branch name with markup: the page must show it as text.
HTML_BRANCH=B003
bm_psql "UPDATE branches SET name = '<b>Bold</b> & <img src=x onerror=alert(1)>' WHERE code = '$HTML_BRANCH'" >/dev/null ||
    fail "renaming $HTML_BRANCH"
REGION=$(bm_psql "SELECT r.code FROM branches b JOIN regions r ON r.id = b.region_id WHERE b.code = 'B001'")
note "stored $expected records up to $END; regional user's region: $REGION"

# ------------------------------------------------------- users, passwords

HQ_PW=hq-page-secret-1
REG_PW=regional-page-secret-1
BM_USER_PASSWORD=$HQ_PW "$BM_TOOL" user add hq_page --role hq --db "$BM_DB" >"$T/user.log" 2>&1 ||
    { cat "$T/user.log"; fail "user add hq_page"; }
BM_USER_PASSWORD=$REG_PW "$BM_TOOL" user add regional_page --role regional --region "$REGION" \
    --db "$BM_DB" >>"$T/user.log" 2>&1 || { cat "$T/user.log"; fail "user add regional_page"; }
# The chain-wide positions the regional page shows, stored by HQ's rule.
"$BM_TOOL" yardstick refresh --db "$BM_DB" >"$T/yardstick.log" 2>&1 ||
    { cat "$T/yardstick.log"; fail "branchmark yardstick refresh"; }
# lib.sh's cluster trusts local connections; let PostgreSQL check the web
# users' passwords (branchmark-web refuses logins it was not asked for).
printf 'local all postgres trust\nlocal all all scram-sha-256\n' >"$T/pg/data/pg_hba.conf"
bm_psql "SELECT pg_reload_conf()" >/dev/null

# ------------------------------------------------------------- the server

bm_pick_port WPORT
cat >"$T/web.conf" <<EOF
database = "host=$T/pg/sock port=$BM_PG_PORT dbname=branchmark"
listen_address = 127.0.0.1
port = $WPORT
static_dir = $STATIC
max_sessions = 8
log_level = info
EOF
bm_run_bg web "$BM_WEB" -c "$T/web.conf"
URL=http://127.0.0.1:$WPORT
wait_until "branchmark-web listens on port $WPORT" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$WPORT"

# ------------------------------------------------------------- the browser

ARTIFACTS=$BM_BUILD_DIR/test-artifacts
mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS"/*.png
rc=0
(cd "$NPM_DIR" &&
    BM_WEB_URL=$URL BM_WEB_USER=hq_page BM_WEB_PASSWORD=$HQ_PW \
    BM_WEB_REGIONAL_USER=regional_page BM_WEB_REGIONAL_PASSWORD=$REG_PW BM_WEB_REGIONAL_REGION=$REGION \
    BM_WEB_HTML_BRANCH=$HTML_BRANCH BM_WEB_ALERT_BRANCH=$ALERT_BRANCH BM_WEB_EXPECT_LOW_N=1 BM_ARTIFACTS=$ARTIFACTS BM_CHROMIUM=$BM_CHROMIUM \
    timeout $((120 * BM_SLOW)) node dashboard.test.mjs) || rc=$?
[ $rc -eq 0 ] || fail "the browser test failed (status $rc; screenshots so far in $ARTIFACTS)"

stop_proc web || fail "branchmark-web did not stop cleanly"
note "screenshots: $(cd "$ARTIFACTS" && ls ./*.png | tr '\n' ' ')"

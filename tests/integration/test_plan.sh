#!/bin/bash
# test_plan: `branchmark plan` on a generated chain (issue 15, visit
# planning; docs/workflow.md "Visit planning").
# - coverage sizes every branch from the basis months' pooled SD and writes
#   nothing; make writes exactly the staffed visits it prints;
# - the plan keeps the programme's rules: no shopper at an outlet twice
#   within lockout_days (against past evaluations too), visits on weekdays
#   and weekends, in several time bands, a share of competitor visits and
#   of surprise visits;
# - following the plan (each planned branch visit simulated by an approved
#   evaluation that repeats, round-robin, the answers of that branch's own
#   basis evaluations) brings the branches' ranking intervals to the target
#   half-width: on average (within 5%), each within 15% (the SDs are
#   estimates; docs/metrics.md "Visit planning");
# - the plan stays invisible to regional roles: plan and SELECT on
#   visit_plans are refused.
source "$(dirname "$0")/lib.sh"

bm_load_generated 6 --regions 2 --competitors 2 --days 120 --scale 0.15 --seed 5 --end 2026-11-30
note "stored $BM_LOADED records"
AT=2026-12-15
HW=10
# Plan from the chain's "today" (the database's clock) on: the test fixes
# it with a December day, whatever day it runs.
bm_psql "ALTER DATABASE branchmark SET timezone = 'UTC'" >/dev/null

"$BM_TOOL" plan coverage --db "$BM_DB" --at "$AT" --half-width "$HW" --format csv \
    >"$T/coverage.csv" 2>"$T/coverage.err" || { cat "$T/coverage.err"; fail "plan coverage"; }
assert_eq "coverage writes nothing" 0 "$(bm_psql "SELECT count(*) FROM visit_plans")"
"$BM_TOOL" plan make --db "$BM_DB" --at "$AT" --half-width "$HW" --format csv \
    >"$T/make.csv" 2>"$T/make.err" || { cat "$T/make.err"; fail "plan make"; }
cat "$T/make.csv" | head -20

# make wrote exactly the staffed visits it printed.
printed=$(python3 -c '
import csv, io, sys
tables = open(sys.argv[1], newline="").read().split("\r\n\r\n")
visits = list(csv.DictReader(io.StringIO(tables[2], newline="")))
print(sum(1 for v in visits if v["shopper"]))' "$T/make.csv")
assert_eq "visits written" "$printed" "$(bm_psql "SELECT count(*) FROM visit_plans")"
[ "$printed" -gt 0 ] || fail "the plan has no visits"

# Lock-out: no pair (shopper, outlet) twice within lockout_days, plans and
# evaluations together (a surprise visit's window counts whole).
lock=$(bm_psql "SELECT lockout_days FROM programme_settings WHERE questionnaire_code = '*'")
clash=$(bm_psql "
WITH v AS (
  SELECT outlet_kind AS k, outlet_id AS o, shopper_ref AS s, planned_on AS d0,
         planned_on + window_days AS d1, 'p' || id AS key FROM visit_plans
  UNION ALL
  SELECT CASE WHEN outlet_branch_id IS NULL THEN 'competitor' ELSE 'branch' END,
         coalesce(outlet_branch_id, competitor_outlet_id), shopper_ref,
         visited_at::date, visited_at::date, 'e' || id
    FROM evaluations WHERE shopper_ref <> '')
SELECT count(*) FROM v a JOIN v b ON a.k = b.k AND a.o = b.o AND a.s = b.s AND a.key < b.key
 WHERE (a.key LIKE 'p%' OR b.key LIKE 'p%')
   AND greatest(a.d0 - b.d1, b.d0 - a.d1, 0) < $lock")
assert_eq "visits within the lock-out" 0 "$clash"

# Spread: each branch with 3 or more visits has a weekend one and 2+ bands;
# competitor and surprise visits are there.
spread=$(bm_psql "
SELECT count(*) FROM (
  SELECT outlet_id FROM visit_plans WHERE outlet_kind = 'branch' GROUP BY outlet_id
  HAVING count(*) >= 3 AND (count(*) FILTER (WHERE extract(isodow FROM planned_on) >= 6) = 0
                            OR count(DISTINCT time_band) < 2)) x")
assert_eq "branches without a weekend visit or with one band" 0 "$spread"
comp=$(bm_psql "SELECT count(*) FILTER (WHERE outlet_kind = 'competitor'), count(*) FROM visit_plans")
python3 -c "
c, n = map(int, '$comp'.split('|'))
assert 0.1 <= c / n <= 0.3, ('competitor share', c, n)"
surprise=$(bm_psql "SELECT count(*) FROM visit_plans WHERE visit_kind = 'surprise' AND window_days > 0")
[ "$surprise" -gt 0 ] || fail "no surprise visits"

# Follow the plan: one approved evaluation per planned branch visit, its
# answers those of the branch's own basis evaluations in turn.
bm_psql "
CREATE TEMP TABLE sim AS
WITH p AS (SELECT vp.*, row_number() OVER (PARTITION BY outlet_id ORDER BY id) AS rn
             FROM visit_plans vp WHERE outlet_kind = 'branch'),
     s AS (SELECT e.*, row_number() OVER (PARTITION BY outlet_branch_id ORDER BY source_id) AS rn,
                  count(*) OVER (PARTITION BY outlet_branch_id) AS cnt
             FROM evaluations e JOIN evaluation_scores sc ON sc.evaluation_id = e.id
            WHERE e.outlet_branch_id IS NOT NULL AND e.review_status = 'approved'
              AND sc.overall IS NOT NULL
              AND e.visited_at >= '2026-09-01' AND e.visited_at < '2026-12-01')
SELECT p.id AS plan_id, s.id AS src, p.outlet_id, p.planned_on, p.shopper_ref, p.time_band
  FROM p JOIN s ON s.outlet_branch_id = p.outlet_id AND s.rn = (p.rn - 1) % s.cnt + 1;
INSERT INTO evaluations (branch_id, source_id, questionnaire_id, channel, scenario,
                         shopper_segment, outlet_branch_id, visited_at, shopper_ref)
SELECT e.branch_id, 'sim-' || sim.plan_id, e.questionnaire_id, e.channel, e.scenario,
       e.shopper_segment, sim.outlet_id,
       sim.planned_on + CASE sim.time_band WHEN 'morning' THEN time '10:00'
                          WHEN 'midday' THEN time '13:00' ELSE time '17:00' END,
       sim.shopper_ref
  FROM sim JOIN evaluations e ON e.id = sim.src;
INSERT INTO evaluation_answers (evaluation_id, questionnaire_id, item_code, points)
SELECT n.id, a.questionnaire_id, a.item_code, a.points
  FROM sim JOIN evaluations n ON n.source_id = 'sim-' || sim.plan_id
  JOIN evaluation_answers a ON a.evaluation_id = sim.src;
UPDATE evaluations SET review_status = 'approved' WHERE source_id LIKE 'sim-%';" >/dev/null ||
    fail "simulating the planned visits"

"$BM_TOOL" rank --db "$BM_DB" --metric ms_score --at "$AT" --format csv >"$T/rank.csv" ||
    fail "rank after the plan"
"$BM_TOOL" plan coverage --db "$BM_DB" --at "$AT" --half-width "$HW" --format csv \
    >"$T/coverage2.csv" || fail "plan coverage after the visits"
python3 - "$T/rank.csv" "$T/coverage.csv" "$HW" <<'EOF' || fail "the plan did not reach the target"
import csv, io, sys
rank = list(csv.DictReader(io.StringIO(open(sys.argv[1], newline='').read().split('\r\n\r\n')[0])))
cov = {r['branch']: r for r in csv.DictReader(io.StringIO(
    open(sys.argv[2], newline='').read().split('\r\n\r\n')[0]))}
target = float(sys.argv[3])
bad, hws = [], []
for r in rank:
    b = r['branch']
    hw = (float(r['ci_high']) - float(r['ci_low'])) / 2
    hws.append(hw)
    print(f"{b}: n {r['n']} (needed {cov[b]['needed']}), half-width {hw:.2f}")
    if int(r['n']) < int(cov[b]['needed']) or hw > target * 1.15:
        bad.append(b)
# The plan sizes from estimated SDs: the target holds on average, a branch
# may miss it by a little (docs/metrics.md, "Visit planning").
mean = sum(hws) / len(hws)
print(f'mean half-width {mean:.2f} for a target of {target}')
sys.exit(1 if bad or not rank or mean > target * 1.05 else 0)
EOF
python3 - "$T/coverage2.csv" <<'EOF' || fail "coverage after the visits"
import csv, io, sys
cov = list(csv.DictReader(io.StringIO(open(sys.argv[1], newline='').read().split('\r\n\r\n')[0])))
assert all(int(r['done']) >= int(r['needed']) and r['new'] == '0' for r in cov), cov
EOF

# Invisible to regional roles.
REG_PW=plan-reg-pw-1
region=$(bm_psql "SELECT code FROM regions ORDER BY code LIMIT 1")
BM_USER_PASSWORD=$REG_PW "$BM_TOOL" user add plan_reg --role regional --region "$region" \
    --db "$BM_DB" >"$T/user.log" 2>&1 || { cat "$T/user.log"; fail "user add plan_reg"; }
REG_DB="$BM_DB user=plan_reg password=$REG_PW"
rc=0
"$BM_TOOL" plan coverage --db "$REG_DB" --at "$AT" >"$T/reg.out" 2>"$T/reg.err" || rc=$?
assert_eq "plan as a regional manager" 1 "$rc"
grep -q "permission denied" "$T/reg.err" || { cat "$T/reg.err"; fail "no permission error"; }
[ ! -s "$T/reg.out" ] || fail "the regional manager saw a plan"
if psql -X -A -t -q -d "$REG_DB" -c "SELECT count(*) FROM visit_plans" >/dev/null 2>&1; then
    fail "a regional role reads visit_plans"
fi
note "plan sized, kept the rules, reached the target and stayed hidden"

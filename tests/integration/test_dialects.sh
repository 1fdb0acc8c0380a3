#!/bin/bash
# test_dialects: store systems' own spreadsheet exports, end to end through
# a real agent and collector into PostgreSQL (issue 14, docs/formats.md
# "Dialects" and "Encodings"), with the real files of tests/data/inbox/:
#  1. receipts_excel_bg.csv: Excel in the Bulgarian locale (UTF-8 with BOM,
#     ';' separators, decimal commas): every amount stored in minor units;
#  2. queue_utf16le.csv: a Windows tool's UTF-16LE with BOM: stored;
#  3. complaints_cp1251.csv with `encoding = complaints:windows-1251` in
#     the agent's config: the Cyrillic categories stored as UTF-8, the one
#     line with an undefined byte refused with its line, field and byte;
#  4. the same cp1251 file at an agent without that line: its Cyrillic
#     lines refused (only the plain-ASCII line stored), and the .errors file
#     says which setting to add.
source "$(dirname "$0")/lib.sh"
export TZ=UTC

DATA=$BM_SOURCE_DIR/tests/data/inbox
bm_load_refdata --branches 2 --regions 1 --competitors 1 --days 1 --scale 0.05

bm_pick_port CPORT
start_collector collector "$CPORT"
start_agent agent-B001 B001 "$T/a1" "tcp://127.0.0.1:$CPORT" "encoding = complaints:windows-1251"
start_agent agent-B002 B002 "$T/a2" "tcp://127.0.0.1:$CPORT"
wait_until "both agents have started" 30 bash -c \
    "grep -q 'started: agent' '$T/agent-B001.log' && grep -q 'started: agent' '$T/agent-B002.log'"

# Into the inbox by rename, as a careful exporter would.
drop() { # drop AGENT_DIR FILE
    cp "$DATA/$2" "$1/.$2.tmp" && mv "$1/.$2.tmp" "$1/inbox/$2"
}
drop "$T/a1" receipts_excel_bg.csv
drop "$T/a1" queue_utf16le.csv
drop "$T/a1" complaints_cp1251.csv
drop "$T/a2" complaints_cp1251.csv

# done/ and rejected/ keep a file as SEQUENCE_NAME.
settled() { # settled DIR FILE: the file has left the inbox for done/ or rejected/
    [ ! -e "$1/inbox/$2" ] && compgen -G "$1/done/*_$2" >/dev/null ||
        { [ ! -e "$1/inbox/$2" ] && compgen -G "$1/rejected/*_$2" >/dev/null; }
}
errors_of() { # errors_of DIR FILE: the path of its .errors file ("" if none)
    compgen -G "$1/rejected/*_$2.errors" | head -n 1 || true
}
for f in receipts_excel_bg.csv queue_utf16le.csv complaints_cp1251.csv; do
    wait_until "agent B001 is done with $f" 60 settled "$T/a1" "$f"
done
wait_until "agent B002 is done with complaints_cp1251.csv" 60 settled "$T/a2" complaints_cp1251.csv

b1=$(bm_psql "SELECT id FROM branches WHERE code = 'B001'")
b2=$(bm_psql "SELECT id FROM branches WHERE code = 'B002'")

# 1. The Excel export: decimal commas into minor units (the parser's tests
# pin every line; here they must arrive in PostgreSQL).
want_r=$(awk -F';' 'NR > 1 && $1 !~ /^"/ { print $1 }' "$DATA/receipts_excel_bg.csv" | sort | head -n 2 | tr '\n' ' ')
got=$(bm_psql "SELECT source_id || '=' || amount_minor || ' ' || currency FROM receipts
               WHERE branch_id = $b1 AND source_id IN ('R-501', 'R-502') ORDER BY source_id")
assert_eq "Excel bg receipts stored in minor units" "R-501=1234 BGN
R-502=-500 BGN" "$got"
note "receipts_excel_bg.csv: $(bm_psql "SELECT count(*) FROM receipts WHERE branch_id = $b1") receipts stored (first: $want_r)"

# 2. UTF-16LE: as many tickets stored as the file has good lines.
lines=$(iconv -f UTF-16 -t UTF-8 "$DATA/queue_utf16le.csv" | tail -n +2 | grep -c .)
ef=$(errors_of "$T/a1" queue_utf16le.csv)
errs=0
[ -z "$ef" ] || errs=$(grep -c '^line' "$ef" || true)
stored=$(bm_psql "SELECT count(*) FROM queue_tickets WHERE branch_id = $b1")
assert_eq "UTF-16LE queue tickets stored (lines - refused lines)" "$((lines - errs))" "$stored"
[ "$stored" -gt 0 ] || fail "no queue ticket of the UTF-16LE file was stored"

# 3. cp1251 with the encoding declared: Cyrillic arrives as UTF-8.
got=$(bm_psql "SELECT category FROM complaints WHERE branch_id = $b1 AND source_id = 'K-70'")
assert_eq "cp1251 category stored as UTF-8" "ожидание" "$got"
got=$(bm_psql "SELECT contact_point FROM complaints WHERE branch_id = $b1 AND source_id = 'K-71'")
assert_eq "cp1251 contact point stored as UTF-8" "торговый зал" "$got"
ef=$(errors_of "$T/a1" complaints_cp1251.csv)
[ -n "$ef" ] || fail "the line with the undefined byte 0x98 was not reported"
grep -q 'byte 0x98 is not windows-1251 text' "$ef" ||
    fail "cp1251 .errors does not name the byte: $(cat "$ef")"

# 4. Without the declaration: refused, with the hint.
# Its lines in plain ASCII are valid UTF-8 and stored; the Cyrillic ones
# are refused, never stored as mojibake.
assert_eq "cp1251 without encoding: only the ASCII line stored" "K-72" \
    "$(bm_psql "SELECT string_agg(source_id, ',' ORDER BY source_id) FROM complaints WHERE branch_id = $b2")"
ef=$(errors_of "$T/a2" complaints_cp1251.csv)
[ -n "$ef" ] || fail "agent B002 reported nothing for the cp1251 file"
grep -q 'not UTF-8; set encoding = complaints:windows-1251 for this source?' "$ef" ||
    fail "no hint in .errors: $(head -n 5 "$ef")"
note "PASS"

#!/bin/sh
# make.sh: how the dialect and encoding samples in tests/data/inbox were made
# (once; the bytes are committed, so the tests do not depend on iconv's
# output format).  Run from this folder: sh make.sh
set -eu
IN=../inbox

# Excel, Bulgarian/Russian locale, "CSV UTF-8": BOM, CRLF, ';' and decimal commas.
printf '\357\273\277' >"$IN/receipts_excel_bg.csv"
sed 's/$/\r/' receipts_excel_bg.txt >>"$IN/receipts_excel_bg.csv"

# Excel, Russian locale, plain "CSV": Windows-1251, CRLF, ';'; then one line
# with 0x98, the one byte Windows-1251 leaves undefined (iconv cannot write it).
sed 's/$/\r/' complaints_cp1251.txt | iconv -f UTF-8 -t WINDOWS-1251 >"$IN/complaints_cp1251.csv"
printf 'K-76;2026-11-02T12:00:00+03:00;\342\200\224;kasse;phone;\r\n' |
    iconv -f UTF-8 -t WINDOWS-1251 | sed 's/\x97/\x98/' >>"$IN/complaints_cp1251.csv"

# A Windows tool's "Unicode" text: UTF-16LE with a BOM, CRLF.
sed 's/$/\r/' queue_utf16.txt | iconv -f UTF-8 -t UTF-16 >"$IN/queue_utf16le.csv"

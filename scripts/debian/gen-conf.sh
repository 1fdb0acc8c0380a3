#!/bin/sh
# gen-conf.sh: writes a packaged config file (/etc/branchmark/*.conf) from a
# template and the key list the program prints with --help.
#
#   gen-conf.sh PROGRAM TEMPLATE > FILE
#
# TEMPLATE is copied up to its line "@KEYS@", which becomes one paragraph per
# key of `PROGRAM --help` (name, type, what it does) with its default as a
# commented-out `#key = default` line.  A key the template already mentions
# (as `key = ...` or `#key = ...`) gets its description only, so the file
# never sets a key twice (the config parser refuses that).  The defaults are
# the program's own, so a new key or a changed default reaches the package
# without anyone editing a config by hand.  Fails (status 1, message) when
# the program prints no key list or the template has no @KEYS@ line.
set -eu

[ $# -eq 2 ] || { echo "usage: gen-conf.sh PROGRAM TEMPLATE" >&2; exit 2; }
prog=$1
template=$2
help=$("$prog" --help) || { echo "gen-conf.sh: $prog --help failed" >&2; exit 1; }
grep -q '^@KEYS@$' "$template" || { echo "gen-conf.sh: $template has no @KEYS@ line" >&2; exit 1; }

printf '%s\n' "$help" | awk -v template="$template" -v prog="$(basename "$prog")" '
# wrap TEXT into "# "-prefixed lines of at most 78 columns.
function wrap(text,    n, w, i, line) {
    n = split(text, w, " ")
    line = "#"
    for (i = 1; i <= n; i++) {
        if (length(line) + 1 + length(w[i]) > 78 && line != "#") {
            print line
            line = "#  "
        }
        line = line " " w[i]
    }
    print line
}
BEGIN {
    # Keys the template mentions, set or commented out.
    while ((getline l < template) > 0) {
        if (match(l, /^#?[a-z_]+[ \t]*=/)) {
            k = substr(l, 1, RLENGTH)
            sub(/^#/, "", k); sub(/[ \t]*=$/, "", k)
            mentioned[k] = 1
        }
    }
    close(template)
}
/^[Cc]onfig (file )?keys/ { inkeys = 1; next }
inkeys && /^  [a-z_]+ / {
    key = $1; type = $2
    text = $0
    sub(/^  [a-z_]+ +[a-z]+ +/, "", text)
    def = ""; hasdef = 0; req = 0
    if (match(text, / \(default: [^)]*\)$/)) {
        def = substr(text, RSTART + 11, RLENGTH - 12)
        text = substr(text, 1, RSTART - 1)
        hasdef = 1
    } else if (match(text, / \(required\)$/)) {
        text = substr(text, 1, RSTART - 1)
        req = 1
    }
    nkeys++
    keys[nkeys] = key; types[nkeys] = type; texts[nkeys] = text
    defs[nkeys] = def; hasdefs[nkeys] = hasdef; reqs[nkeys] = req
    next
}
END {
    if (nkeys == 0) {
        print "gen-conf.sh: " prog " --help printed no config key list" > "/dev/stderr"
        exit 1
    }
    while ((getline l < template) > 0) {
        if (l != "@KEYS@") { print l; continue }
        for (i = 1; i <= nkeys; i++) {
            print ""
            what = keys[i] " (" types[i] (reqs[i] ? ", required" : "") "): " texts[i]
            if (keys[i] in mentioned) {
                wrap(what "; set above")
                continue
            }
            if (defs[i] ~ /</) {
                # A default that is a rule ("<data_dir>/inbox"), not a value.
                wrap(what " (default: " defs[i] ")")
                print "#" keys[i] " ="
                continue
            }
            wrap(what)
            if (hasdefs[i] && defs[i] != "")
                print "#" keys[i] " = " defs[i]
            else
                print "#" keys[i] " ="
        }
    }
}'

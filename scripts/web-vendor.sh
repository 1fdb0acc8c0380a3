#!/bin/sh
# web-vendor.sh: assembles the dashboard's static directory (branchmark-web's
# static_dir) in a build tree.
#
#   web-vendor.sh BUILD_DIR
#
# Result: BUILD_DIR/web/ with index.html and assets/ from collector/web/ and
# vendor/chart.umd.js (+ its licence), the charting library at the exact
# version pinned by collector/web/package-lock.json.  The library comes from
# the npm registry through `npm ci` (integrity-checked against the lock) run
# in BUILD_DIR/web-npm/ with its npm cache in BUILD_DIR/web-npm/cache, so
# nothing is written outside the build tree and node_modules never appears
# in the source tree.  npm runs again only when the lock file changed; with
# a warm cache it needs no network.  The page then loads nothing from
# outside the server: it works offline in a store network.
#
# Needs node and npm (scripts/deps.sh installs Debian's when they are
# missing).  Exits non-zero with a message naming what failed.
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd -P)
[ $# -eq 1 ] || { echo "usage: web-vendor.sh BUILD_DIR" >&2; exit 2; }
mkdir -p "$1"
BUILD=$(cd "$1" && pwd -P)
WEB_SRC=$SRC/collector/web
OUT=$BUILD/web
NPM_DIR=$BUILD/web-npm

die() {
    echo "web-vendor.sh: $*" >&2
    exit 1
}

command -v npm >/dev/null 2>&1 || die "npm is not installed (run scripts/deps.sh, which installs Debian's nodejs and npm)"
for f in index.html assets/app.js assets/app.css package.json package-lock.json; do
    [ -f "$WEB_SRC/$f" ] || die "missing $WEB_SRC/$f"
done

# npm ci wipes node_modules and installs exactly the lock's versions; the
# stamp (a copy of the lock and package.json taken after a successful run)
# lets a rebuild skip it.
mkdir -p "$NPM_DIR"
if ! cmp -s "$WEB_SRC/package-lock.json" "$NPM_DIR/stamp.lock" ||
    ! cmp -s "$WEB_SRC/package.json" "$NPM_DIR/stamp.json" ||
    [ ! -f "$NPM_DIR/node_modules/chart.js/dist/chart.umd.js" ]; then
    rm -f "$NPM_DIR/stamp.lock" "$NPM_DIR/stamp.json"
    cp "$WEB_SRC/package.json" "$WEB_SRC/package-lock.json" "$NPM_DIR/"
    (
        cd "$NPM_DIR" &&
            npm ci --cache "$NPM_DIR/cache" --prefer-offline --ignore-scripts \
                --no-audit --no-fund --update-notifier=false --loglevel=error
    ) >"$NPM_DIR/npm-ci.log" 2>&1 ||
        { cat "$NPM_DIR/npm-ci.log" >&2; die "npm ci failed in $NPM_DIR (is the npm registry reachable?)"; }
    cp "$WEB_SRC/package-lock.json" "$NPM_DIR/stamp.lock"
    cp "$WEB_SRC/package.json" "$NPM_DIR/stamp.json"
fi

LIB=$NPM_DIR/node_modules/chart.js
[ -s "$LIB/dist/chart.umd.js" ] || die "$LIB/dist/chart.umd.js is missing after npm ci"
version=$(node -p 'require(process.argv[1]).version' "$LIB/package.json") ||
    die "cannot read the version of $LIB"

# Assemble next to the old directory and swap, so a running server never
# serves a half-copied page.
rm -rf "$OUT.new"
mkdir -p "$OUT.new/vendor"
cp "$WEB_SRC/index.html" "$OUT.new/"
cp -R "$WEB_SRC/assets" "$OUT.new/assets"
cp "$LIB/dist/chart.umd.js" "$OUT.new/vendor/chart.umd.js"
for lic in LICENSE.md LICENSE; do
    if [ -f "$LIB/$lic" ]; then
        cp "$LIB/$lic" "$OUT.new/vendor/chart.js.LICENSE.md"
        break
    fi
done
rm -rf "$OUT.old"
[ -d "$OUT" ] && mv "$OUT" "$OUT.old"
mv "$OUT.new" "$OUT"
rm -rf "$OUT.old"
echo "web-vendor.sh: $OUT ready (chart.js $version)"

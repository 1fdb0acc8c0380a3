#!/bin/sh
# package.sh: builds the four Debian packages of Branchmark.
#
#   package.sh [OUT_DIR]          (default: build-packages/ in the checkout)
#
# Result: OUT_DIR/branchmark-{agent,collector,web,tools}_VERSION_ARCH.deb,
# checked by lintian when it is installed (any error or warning that is not
# overridden fails the build; docs/packaging.md lists the overrides).
#
# How: dpkg-buildpackage with debhelper (docs/packaging.md says why not
# CPack).  The packaging lives in scripts/debian/, because the top of the
# tree holds only the project's own folders; this script copies the source
# tree (the files git knows, with uncommitted changes, without build trees)
# to OUT_DIR/work/branchmark-VERSION/, adds scripts/debian/ as debian/ and
# the units of scripts/systemd/ as debian/PACKAGE.service, and builds there.
# The CMake build tree (debian/build/) is kept from one run to the next and
# file times are preserved, so a second run compiles only what changed.
#
# Needs the build dependencies of scripts/debian/control (scripts/deps.sh
# installs them) and npm for the dashboard's charting library
# (scripts/web-vendor.sh: the npm registry, or its cache in the build tree).
# Builds with at most 2 jobs (BM_JOBS to change it).  Exits non-zero with a
# message naming what failed; the whole build log is OUT_DIR/work/build.log.
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd -P)
OUT=${1:-$SRC/build-packages}
JOBS=${BM_JOBS:-2}
PACKAGES="branchmark-agent branchmark-collector branchmark-web branchmark-tools"

die() {
    echo "package.sh: $*" >&2
    exit 1
}

for tool in dpkg-buildpackage dpkg-parsechangelog dh help2man cmake; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool is not installed (run scripts/deps.sh, which installs the packaging tools)"
done

# The package version is the changelog's; it must be the project's version,
# or `branchmark-agent --version` and `dpkg -l` would disagree.
version=$(dpkg-parsechangelog -l "$SRC/scripts/debian/changelog" -S Version)
cmake_version=$(sed -n 's/^project(branchmark VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[ -n "$cmake_version" ] || die "cannot find the project version in $SRC/CMakeLists.txt"
[ "${version%%-*}" = "$cmake_version" ] ||
    die "scripts/debian/changelog is at $version but CMakeLists.txt at $cmake_version: add a changelog entry"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)
case "$OUT/" in
"$SRC/"*/*) ;;
"$SRC/") die "OUT_DIR must not be the source tree itself" ;;
esac
WORK=$OUT/work
STAGE=$WORK/branchmark-$version
mkdir -p "$WORK"

# ---- stage the source tree
list=$WORK/files.list
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked and untracked-but-not-ignored files that exist (a deleted
    # file not yet committed is left out).
    git -C "$SRC" ls-files --cached --others --exclude-standard |
        while IFS= read -r f; do [ -f "$SRC/$f" ] && printf '%s\n' "$f"; done >"$list"
else
    (cd "$SRC" && find . -path ./var -prune -o -path './build*' -prune -o \
        -name node_modules -prune -o -type f -print | sed 's|^\./||') >"$list"
fi
[ -s "$list" ] || die "no source files found in $SRC"
rm -rf "$STAGE.new"
mkdir -p "$STAGE.new"
tar -C "$SRC" --verbatim-files-from -T "$list" -cf - | tar -C "$STAGE.new" -xf - ||
    die "could not copy the source tree to $STAGE.new"
# Keep the CMake build tree of the last run (same absolute path, so its
# cache stays valid); everything else is fresh.
if [ -d "$STAGE/debian/build" ]; then
    mkdir -p "$STAGE.new/debian"
    mv "$STAGE/debian/build" "$STAGE.new/debian/build"
fi
rm -rf "$STAGE"
mv "$STAGE.new" "$STAGE"
cp -R "$STAGE/scripts/debian/." "$STAGE/debian/"
for unit in "$STAGE"/scripts/systemd/*.service; do
    cp "$unit" "$STAGE/debian/"
done

# ---- build
rm -f "$WORK"/*.deb "$WORK"/*.changes "$WORK"/*.buildinfo
for p in $PACKAGES; do
    rm -f "$OUT/${p}_"*.deb
done
echo "package.sh: building $PACKAGES $version in $STAGE (log: $WORK/build.log)"
if ! (cd "$STAGE" && DEB_BUILD_OPTIONS="parallel=$JOBS ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -b -nc -us -uc) >"$WORK/build.log" 2>&1; then
    tail -n 60 "$WORK/build.log" >&2
    die "dpkg-buildpackage failed (whole log: $WORK/build.log)"
fi

debs=""
for p in $PACKAGES; do
    deb=$(ls "$WORK/${p}_${version}_"*.deb 2>/dev/null | head -n 1)
    [ -n "$deb" ] || die "dpkg-buildpackage made no $p package (log: $WORK/build.log)"
    mv "$deb" "$OUT/"
    debs="$debs $OUT/$(basename "$deb")"
done

# ---- lintian
if command -v lintian >/dev/null 2>&1; then
    # shellcheck disable=SC2086  # one argument per package
    if ! lintian --fail-on error,warning --info --display-info $debs >"$WORK/lintian.log" 2>&1; then
        cat "$WORK/lintian.log" >&2
        die "lintian found errors or warnings that are not overridden (docs/packaging.md)"
    fi
    if [ -s "$WORK/lintian.log" ]; then
        echo "package.sh: lintian notes (no error, no warning):"
        sed 's/^/  /' "$WORK/lintian.log"
    fi
else
    echo "package.sh: lintian is not installed: packages not checked (scripts/deps.sh installs it)"
fi

for deb in $debs; do
    echo "package.sh: $deb"
done

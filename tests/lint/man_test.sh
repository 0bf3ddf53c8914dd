#!/usr/bin/env bash
# Every manual page in the repository renders without a single warning from
# man and groff (a misspelt macro or a broken table silently drops text), and
# the check itself catches a broken page.
# Usage: man_test.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: man_test.sh SOURCE_DIR}
command -v man >/dev/null || { echo "man_test: man is missing (scripts/setup installs man-db)" >&2; exit 1; }

render() { { MANWIDTH=80 man --warnings -l "$1" >/dev/null; } 2>&1; }

status=0 pages=0
while IFS= read -r -d '' page; do
    pages=$((pages + 1))
    out=$(render "$page") || { echo "FAIL: $page does not render" >&2; status=1; }
    if [ -n "$out" ]; then
        printf 'FAIL: %s renders with warnings:\n%s\n' "$page" "$out" >&2
        status=1
    fi
done < <(find "$src" -path "$src/build*" -prune -o -path "$src/.git" -prune -o \
    -type f -name '*.[1-8]' -print0)
[ "$pages" -ge 5 ] || { echo "FAIL: found only $pages manual pages under $src" >&2; exit 1; }

broken=$(mktemp)
trap 'rm -f "$broken"' EXIT
printf '.TH BROKEN 1\n.SH NAME\nbroken \\- a test page\n.XY unknown macro\n' >"$broken"
if [ -z "$(render "$broken")" ]; then
    echo "FAIL: a page with an unknown macro rendered without a warning: the check cannot fail" >&2
    status=1
fi
[ "$status" = 0 ] && echo "man_test: $pages pages render without warnings"
exit "$status"

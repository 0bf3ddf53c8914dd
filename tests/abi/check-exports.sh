#!/usr/bin/env bash
# Checks that a module exports exactly what its linker map allows: every dynamic
# symbol it defines matches a "global:" pattern of the map, and every literal
# (non-wildcard) name in the map is exported.
# Usage: check-exports.sh MODULE.so MAP [REQUIRED_SYMBOL...]
set -euo pipefail
module=$1 map=$2
shift 2

mapfile -t patterns < <(sed -n '/global:/,/local:/p' "$map" | sed -e 's/global://' -e 's/local:.*//' \
    -e 's/[;[:space:]]//g' | grep -v '^$')
mapfile -t exported < <(nm -D --defined-only "$module" | awk '{print $3}' | sed 's/@.*//' | sort -u)

fail=0
for sym in "${exported[@]}"; do
    ok=0
    for pat in "${patterns[@]}"; do
        # shellcheck disable=SC2053 # the map's patterns are globs on purpose
        [[ $sym == $pat ]] && ok=1 && break
    done
    if [ "$ok" = 0 ]; then
        echo "FAIL: $module exports '$sym', which $map does not allow"
        fail=1
    fi
done
for pat in "${patterns[@]}" "$@"; do
    case "$pat" in *'*'*) continue ;; esac
    if ! printf '%s\n' "${exported[@]}" | grep -qx -- "$pat"; then
        echo "FAIL: $module does not export '$pat'"
        fail=1
    fi
done
[ "$fail" = 0 ] && echo "ok: $(basename "$module") exports ${#exported[@]} symbols, all allowed by $(basename "$map")"
exit "$fail"

#!/usr/bin/env bash
# No file of the repository points outside it: a person who has only the
# repository or the packages must find every document it names. Checks every
# relative Markdown link (it must resolve to a file or directory inside the
# repository) and any mention of a path that climbs out of the repository
# root, such as ../shared/.
# Usage: links_test.sh SOURCE_DIR
set -euo pipefail
src=$(cd "${1:?usage: links_test.sh SOURCE_DIR}" && pwd -P)
status=0 links=0

while IFS= read -r -d '' md; do
    dir=$(dirname "$md")
    # [text](target): skip URLs and in-page anchors.
    while IFS= read -r target; do
        target=${target%%#*}
        case "$target" in ''|http://*|https://*|mailto:*) continue ;; esac
        links=$((links + 1))
        resolved=$(realpath -m "$dir/$target")
        case "$resolved" in
            "$src"/*) [ -e "$resolved" ] || { echo "FAIL: ${md#"$src"/}: link to missing $target" >&2; status=1; } ;;
            *) echo "FAIL: ${md#"$src"/}: link leaves the repository: $target" >&2; status=1 ;;
        esac
    done < <(grep -o '\]([^)]*)' "$md" | sed 's/^](//; s/)$//')
done < <(find "$src" -path "$src/build*" -prune -o -path "$src/.git" -prune -o \
    -type f -name '*.md' -print0)

# A path into the team's notebook beside the repository, in any file.
if out=$(git -C "$src" grep -n -I -e '\.\./shared/' -e '\.\./\.\./shared' -- ':!tests/lint/links_test.sh' 2>/dev/null); then
    printf 'FAIL: files name a path outside the repository:\n%s\n' "$out" >&2
    status=1
fi
[ "$status" = 0 ] && echo "links_test: $links relative links, all inside the repository"
exit "$status"

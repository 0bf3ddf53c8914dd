#!/usr/bin/env bash
# Every verb's synopsis is the same in `phictl --help`, in `phictl VERB --help`
# and in phictl(1)'s VERBS section: a verb added, renamed or given a new
# option in one place and not the others fails here.
# Usage: phictl_help_test.sh PHICTL MANPAGE
set -euo pipefail
phictl=${1:?usage: phictl_help_test.sh PHICTL MANPAGE}
page=${2:?usage: phictl_help_test.sh PHICTL MANPAGE}
status=0
norm() { tr -s ' \t' ' ' | sed 's/^ //; s/ $//'; }

# The tags of the VERBS section: the line after each .TP, up to the next .SH.
# Rendered each on a line of its own (a short tag shares its line with the
# description in the full page); the doctor's list of checks, inside .RS,
# is not a verb.
man_tags=$( { printf '.TH T 1\n.SH T\n'
    awk '/^\.SH /{ in_verbs = ($2 == "VERBS") } /^\.RS/{ depth++ } /^\.RE/{ depth-- }
         in_verbs && tp { print; print ".br"; tp = 0 } in_verbs && depth == 0 && /^\.TP/{ tp = 1 }' "$page"; } |
    MANWIDTH=250 man -l - 2>/dev/null | sed -n '/^T$/,$p' | sed '1d' | grep -v -e '^ *$' -e 'T(1) *$' |
    norm | sort)
[ -n "$man_tags" ] || { echo "FAIL: no verbs found in $page" >&2; exit 1; }

# The Verbs block of --help: a synopsis starts a line at two spaces and ends
# where two spaces begin its summary.
help_tags=$("$phictl" --help | sed -n '/^Verbs:$/,/^$/p' |
    sed -n 's/^  \([^ ]\([^ ]\| [^ ]\)*\).*/\1/p' | norm | sort)
[ -n "$help_tags" ] || { echo "FAIL: no verbs found in phictl --help" >&2; exit 1; }

if [ "$man_tags" != "$help_tags" ]; then
    echo "FAIL: phictl --help and $page list different verbs:" >&2
    diff <(echo "$help_tags") <(echo "$man_tags") | sed 's/^</  --help:/; s/^>/  man:   /' >&2 || true
    status=1
fi

# Each verb's own --help prints the same synopsis.
while IFS= read -r synopsis; do
    read -r -a words <<<"${synopsis%% [A-Z[]*}"
    out=$("$phictl" "${words[@]}" --help) || { echo "FAIL: phictl ${words[*]} --help exits non-zero" >&2; status=1; continue; }
    own=$(sed -n '1s/^Usage: phictl \[--json\] \[--socket PATH\] //p' <<<"$out" | norm)
    if [ "$own" != "$synopsis" ]; then
        printf 'FAIL: phictl %s --help says "%s", phictl --help says "%s"\n' "${words[*]}" "$own" "$synopsis" >&2
        status=1
    fi
done <<<"$help_tags"
[ "$status" = 0 ] && echo "phictl_help_test: $(wc -l <<<"$help_tags") verbs agree in --help, VERB --help and $(basename "$page")"
exit "$status"

#!/usr/bin/env bash
# audit_export_bench: `phictl audit export` of a large audit log.
#
# In private namespaces (tests/lib/harness.bash, tests/integration/totp-lib.bash):
# audit_fill writes RECORDS synthetic records (the daemon's kinds of events)
# into a fresh store with the daemon's own writer (a checkpoint every 10,000),
# phiaccessd starts on it, and root runs `phictl audit export > FILE` (all
# records, the newest tenth with --since, the oldest with --until), timed;
# the exports are then verified offline; and a query for one user's records
# (`phictl audit --user`, which reads every record). Beside them, measured in
# the same run on the same machine: one SHA-256 pass over as many bytes as
# the export (libsodium), a plain write(2) of as many bytes, and fdatasync of
# a 4 KiB append. Prints the
# figures, the export's and the store's bytes per record, and phictl's and
# the daemon's peak memory; asserts nothing.
#
# Usage: bench/audit_export_bench.sh [--records N]   (default 1000000)
#        Needs root; build dir $PHI_BUILD_DIR (default build/).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.bash
source "$(dirname "$0")/../tests/lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=../tests/integration/totp-lib.bash
source "$(dirname "$0")/../tests/integration/totp-lib.bash"
phi_harness_init "$@"

records=1000000
while [ $# -gt 0 ]; do
    case "$1" in
        --records) records=$2; shift 2 ;;
        *) phi_die "usage: audit_export_bench.sh [--records N]" ;;
    esac
done
FILL=$PHI_BUILD_DIR/bench/audit_fill
CTL=$PHI_BUILD_DIR/phiaccessd/phictl

totp_setup
phi_log "filling the store with $records records"
"$FILL" fill "$TOTP_DIR/phi.db" "$TOTP_DIR/audit.key" "$(hostname)/phi-audit" "$records"
store_bytes=$(stat -c %s "$TOTP_DIR/phi.db")
totp_daemon_start

export_timed() { # OUT ARGS...: runs the export, prints "seconds peak_kib"
    local out=$1
    shift
    /usr/bin/time -f '%e %M' -o "$PHI_TMP/time.txt" "$CTL" audit export "$@" >"$out" 2>"$PHI_TMP/export.err" ||
        phi_die "export failed: $(cat "$PHI_TMP/export.err")"
    cat "$PHI_TMP/time.txt"
}
read -r t_all kib_all < <(export_timed "$PHI_TMP/all.jsonl")
bytes=$(stat -c %s "$PHI_TMP/all.jsonl")
n=$(($(grep -c '^{"hash"' "$PHI_TMP/all.jsonl")))
# The newest tenth: its header's tree is built from 90% of the leaf hashes.
since=$(sed -n "$((n * 9 / 10 + 2))p" "$PHI_TMP/all.jsonl" | jq -r '.leaf.time_us / 1000000 | floor | todate')
read -r t_tail kib_tail < <(export_timed "$PHI_TMP/tail.jsonl" --since "$since")
n_tail=$(($(grep -c '^{"hash"' "$PHI_TMP/tail.jsonl")))
# The oldest tenth: its last line's consistency proof hashes all the leaves.
until=$(sed -n "$((n / 10 + 2))p" "$PHI_TMP/all.jsonl" | jq -r '.leaf.time_us / 1000000 | floor | todate')
read -r t_head kib_head < <(export_timed "$PHI_TMP/head.jsonl" --until "$until")
n_head=$(($(grep -c '^{"hash"' "$PHI_TMP/head.jsonl")))
for f in tail head; do
    "$CTL" audit verify "$PHI_TMP/$f.jsonl" --key "$(cat "$TOTP_DIR/audit.key.pub")" >/dev/null ||
        phi_die "the $f export does not verify"
done
# A query reads every record of its range (the leaf is what it filters on):
# one user's records out of all of them, as CSV.
/usr/bin/time -f '%e %M' -o "$PHI_TMP/time.txt" "$CTL" audit --user user5 --format csv >"$PHI_TMP/user5.csv" ||
    phi_die "the query failed"
read -r t_query kib_query <"$PHI_TMP/time.txt"
n_query=$(($(wc -l <"$PHI_TMP/user5.csv") - 1))
daemon_kib=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$TOTP_DAEMON_PID/status")
t0=$(date +%s.%N)
"$CTL" audit verify "$PHI_TMP/all.jsonl" --key "$(cat "$TOTP_DIR/audit.key.pub")" >/dev/null ||
    phi_die "the export does not verify"
t_verify=$(echo "$(date +%s.%N) - $t0" | bc)
floors=$("$FILL" floors "$PHI_TMP" "$bytes")

echo
echo "audit export: $n records, $bytes bytes ($((bytes / n)) bytes a record; the store $((store_bytes / n)) a record)"
printf 'phictl audit export (all):          %6.2f s  %8.0f records/s  %6.1f MB/s  phictl peak %d KiB\n' \
    "$t_all" "$(echo "$n / $t_all" | bc -l)" "$(echo "$bytes / $t_all / 1000000" | bc -l)" "$kib_all"
printf 'phictl audit export --since (newest %d): %6.2f s  phictl peak %d KiB\n' "$n_tail" "$t_tail" "$kib_tail"
printf 'phictl audit export --until (oldest %d): %6.2f s  phictl peak %d KiB\n' "$n_head" "$t_head" "$kib_head"
printf 'phictl audit verify FILE (offline): %6.2f s\n' "$t_verify"
printf 'phictl audit --user user5 (%d of %d records): %6.2f s  phictl peak %d KiB\n' "$n_query" "$n" "$t_query" \
    "$kib_query"
echo "phiaccessd peak resident: $daemon_kib KiB"
echo "$floors"

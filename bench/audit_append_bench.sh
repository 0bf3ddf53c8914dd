#!/usr/bin/env bash
# audit_append_bench: the daemon's audit log at work, each figure beside a
# floor measured in the same run.
#   appends      durable audit records/s through the real daemon path: AUTH
#                requests of unknown users with a wrong code over T persistent
#                connections to the PAM socket; each answer leaves after the
#                verifier's round commits (synchronous=FULL) the failure
#                counter and its auth_fail record, many requests a round (the
#                group commit). Records counted by `phictl status`.
#   fdatasync    pwrite + fdatasync of a 4 KiB page beside the store, one
#                thread: the commits/s the store's file system allows;
#   sha256       leaf hashes/s of a record of the daemon's size: the CPU floor
#                of both appending and verifying;
#   verify       `phictl audit verify` of a log of 1,000,000 records (the
#                store filled up to that with the daemon's own writer,
#                audit_log.c, a checkpoint every 1,000), wall clock; and
#                phiaccessd --verify-audit on it with the daemon stopped;
#   treeread     the stored tree read each round begins with (what lets
#                several daemons append to one tree), per round, beside an
#                empty round (BEGIN IMMEDIATE .. COMMIT) in the same run;
#   bytes        bytes per record in the store: the audit tables' pages
#                (SQLite's dbstat) / records, and the whole file / records.
# Usage: bench/audit_append_bench.sh [--count N] [--threads T] [--records M]
#        defaults 100000, 64, 1000000. Needs root (namespaces); build dir
#        $PHI_BUILD_DIR (default build/).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.bash
source "$(dirname "$0")/../tests/lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=../tests/integration/totp-lib.bash
source "$(dirname "$0")/../tests/integration/totp-lib.bash"
phi_harness_init "$@"

count=100000 threads=64 records=1000000
while [ $# -gt 0 ]; do
    case "$1" in
        --count) count=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --records) records=$2; shift 2 ;;
        *) phi_die "usage: audit_append_bench.sh [--count N] [--threads T] [--records M]" ;;
    esac
done
BENCH=$PHI_BUILD_DIR/bench/audit_append_bench
TOTP_BENCH=$PHI_BUILD_DIR/bench/totp_bench
PHICTL=$PHI_BUILD_DIR/phiaccessd/phictl
for f in "$BENCH" "$TOTP_BENCH" "$PHICTL"; do
    [ -x "$f" ] || phi_die "$f is missing; build first"
done

# Every request is a new unknown name: no counter reaches a lockout.
TOTP_EXTRA_CONFIG=$'max_failures = 1000\nhost_max_failures = 1000000'
totp_setup
totp_daemon_start
db=$TOTP_DIR/phi.db
status_of() { # KEY
    "$PHICTL" status | awk -v k="$1" '$1 == k { print $2 }'
}

echo "== floors (same run, same file system as the store)"
"$TOTP_BENCH" fsync --out "$TOTP_DIR/fsync-probe" --count 2000 --label fdatasync | sed 's/^/  /'
"$BENCH" sha256 --count 1000000 | sed 's/^/  /'

echo "== durable appends through the daemon ($count requests, $threads connections)"
before=$(status_of audit_records)
rounds0=$(status_of totp_rounds)
line=$("$BENCH" auth --socket /run/phiaccessd/pam --threads "$threads" --count "$count" --prefix a)
after=$(status_of audit_records)
rounds1=$(status_of totp_rounds)
secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$line")
echo "  $line"
awk -v r=$((after - before)) -v s="$secs" -v k=$((rounds1 - rounds0)) 'BEGIN {
    printf "  appends: %d records in %.3f s = %.0f records/s, %d rounds (%.1f records per commit)\n",
        r, s, r / s, k, k ? r / k : 0 }'

echo "== verification of $records records"
totp_daemon_stop
have=$(sqlite3 "$db" "SELECT count(*) FROM audit_log")
[ "$have" -ge "$records" ] || "$BENCH" fill --store "$db" --key "$TOTP_DIR/audit.key" --count $((records - have)) | sed 's/^/  /'
sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
# What several daemons appending to one tree cost a single writer: the
# stored tree read at each round, beside the round it is read in.
"$BENCH" treeread --store "$db" --key "$TOTP_DIR/audit.key" --count 20000 | sed 's/^/  /'
n=$(sqlite3 "$db" "SELECT count(*) FROM audit_log")
audit_bytes=$(sqlite3 "$db" "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'audit%' OR name LIKE 'sqlite_autoindex_audit%'")
file_bytes=$(stat -c %s "$db")
awk -v n="$n" -v a="$audit_bytes" -v f="$file_bytes" 'BEGIN {
    printf "  bytes: %d records; audit tables %.1f MB = %.0f bytes/record (%.0f MB per million); whole store %.1f MB = %.0f bytes/record\n",
        n, a / 1e6, a / n, a / n, f / 1e6, f / n }'
t0=$(date +%s%N)
out=$("$PHI_BUILD_DIR/phiaccessd/phiaccessd" --verify-audit "$db" --key "$TOTP_DIR/audit.key.pub") ||
    phi_die "phiaccessd --verify-audit failed: $out"
t1=$(date +%s%N)
echo "  offline (--verify-audit, journal read): $(( (t1 - t0) / 1000000 )) ms: $(tr -s ' \n' ' ' <<<"$out")"
totp_daemon_start
t0=$(date +%s%N)
out=$("$PHICTL" audit verify)
t1=$(date +%s%N)
echo "  live (phictl audit verify): $(( (t1 - t0) / 1000000 )) ms for $(awk '$1 == "records:" { print $2 }' <<<"$out") records"
totp_daemon_stop

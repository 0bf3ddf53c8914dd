#!/usr/bin/env bash
# store_pg_bench: durable TOTP verifications/s with phiaccessd's shared store
# in PostgreSQL, beside the same with the store in SQLite, in one run on one
# disk.
#
# In private namespaces (tests/lib/harness.bash): a journald, a slapd with the
# users (tests/lib/gen-ldif), a private PostgreSQL 15 (tests/lib/postgres.bash:
# a Unix socket, fsync=on, synchronous_commit=on) and, one after the other,
# two daemons: [store] backend = sqlite, then backend = postgresql (the schema
# made by phiaccessd --init-store as its owner, the daemon as a role with only
# its rights). Each enrols the users through the protocol (totp_bench enroll)
# and then answers N AUTH requests over T persistent connections on the PAM
# socket, every code valid and never used: each answer waits for its
# watermark's commit (SQLite: fdatasync of its WAL; PostgreSQL: COMMIT with
# synchronous_commit = on, its WAL flushed). Printed beside them: the floor of
# the disk (pwrite + fdatasync of a 4 KiB page, totp_bench fsync), measured in
# the same run, and the requests per durable transaction (phictl status).
#
# Usage: bench/store_pg_bench.sh [--count N] [--threads T]; defaults 1000, 32
#        (enrolment takes 10 s per 95 users and backend: the daemon's limit).
#        Needs root (namespaces); build dir $PHI_BUILD_DIR (default build/).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.bash
source "$(dirname "$0")/../tests/lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=../tests/lib/postgres.bash
source "$(dirname "$0")/../tests/lib/postgres.bash"
phi_harness_init "$@"

count=1000 threads=32
while [ $# -gt 0 ]; do
    case "$1" in
        --count) count=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        *) phi_die "usage: store_pg_bench.sh [--count N] [--threads T]" ;;
    esac
done

BENCH=$PHI_BUILD_DIR/bench/totp_bench
CTL=$PHI_BUILD_DIR/phiaccessd/phictl
DAEMON=$PHI_BUILD_DIR/phiaccessd/phiaccessd
suffix=dc=example,dc=org

# shellcheck disable=SC2119 # no options: the default journald
phi_journald_start
phi_gen_ldif --suffix "$suffix" --users "$count" >"$PHI_TMP/users.ldif"
PHI_SLAPD_TIMEOUT=120 phi_slapd_start "$suffix" "$PHI_TMP/users.ldif"
phi_pg_start

result_field() { # LINE KEY
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

declare -A RES=() PER_TX=()
CTL_SOCKET=""
users_synced() { [ "$("$CTL" --socket "$CTL_SOCKET" --json status | jq -r .users)" = "$count" ]; }

# run BACKEND: a daemon on that store, its users enrolled, then the run.
run() {
    local backend=$1 dir=$PHI_TMP/$1 conf line enroll pid r0 q0 ctl
    mkdir -p "$dir/run"
    chmod 0755 "$PHI_TMP" "$PHI_RUN_DIR" "$dir" "$dir/run"
    printf 'root:x:0:0:root:/root:/bin/bash\n' >"$dir/passwd"
    printf 'root:x:0:\nphi-admins:x:3000:\n' >"$dir/group"
    conf=$dir/phiaccessd.conf
    {
        printf '[ldap]\nuri = %s\nbase = %s\nuser_base = ou=people,%s\ngroup_base = ou=groups,%s\ntls = none\n' \
            "$PHI_LDAP_URI" "$suffix" "$suffix" "$suffix"
        printf '[store]\npath = %s/phi.db\n' "$dir"
        [ "$backend" = sqlite ] || printf 'backend = postgresql\nuri = %s\n' "$PHI_PG_URI"
        printf '[daemon]\nsocket = %s/run/socket\npam_socket = %s/run/pam\nsnapshot = %s/nss.snapshot\n' \
            "$dir" "$dir" "$dir"
        printf 'passwd_file = %s/passwd\ngroup_file = %s/group\n' "$dir" "$dir"
        printf '[totp]\nmaster_key = %s/master.key\ncreate_master_key = yes\nissuer = phi bench\n' "$dir"
        printf 'host_max_failures = 1000000\n'
    } >"$conf"
    chmod 0600 "$conf"
    if [ "$backend" = postgresql ]; then
        sed -e "s|^uri = $PHI_PG_URI\$|uri = $PHI_PG_URI_OWNER|" "$conf" >"$dir/owner.conf"
        chmod 0600 "$dir/owner.conf"
        "$DAEMON" --config "$dir/owner.conf" --init-store >/dev/null || phi_die "--init-store failed"
    fi
    ctl=("$CTL" --socket "$dir/run/socket")
    phi_spawn "phiaccessd-$backend" "$DAEMON" --foreground --config "$conf"
    pid=$PHI_LAST_PID
    phi_wait_for --timeout 15 --what "phiaccessd socket" test -S "$dir/run/socket" || phi_die "no daemon"
    CTL_SOCKET=$dir/run/socket
    phi_wait_for --timeout 300 --interval 0.2 --what "$count users synced" users_synced ||
        phi_die "the daemon did not load $count users"
    # The daemon admits 200 self-service requests per 10 s (phiaccessd(8),
    # LIMITS), two per enrolment (enroll, activate): batches of 95 users.
    local first=1 n
    : >"$dir/secrets"
    while [ "$first" -le "$count" ]; do
        n=$((count - first + 1))
        [ "$n" -le 95 ] || n=95
        enroll=$("$BENCH" enroll --socket "$dir/run/socket" --first "$first" --count "$n" --threads "$threads" \
            --out "$dir/secrets.part")
        [ "$(result_field "$enroll" errors)" = 0 ] || phi_die "enrolment failed: $enroll"
        cat "$dir/secrets.part" >>"$dir/secrets"
        first=$((first + n))
        [ "$first" -gt "$count" ] || sleep 10.5
    done
    r0=$("${ctl[@]}" --json status | jq -r .totp_rounds)
    q0=$("${ctl[@]}" --json status | jq -r .totp_requests)
    line=$("$BENCH" auth --socket "$dir/run/pam" --secrets "$dir/secrets" --first 1 --count "$count" \
        --threads "$threads" --label "phi-$backend")
    if [ "$(result_field "$line" errors)" != 0 ] || [ "$(result_field "$line" unexpected)" != 0 ]; then
        phi_die "run on $backend went wrong: $line"
    fi
    RES[$backend]=$line
    PER_TX[$backend]=$(awk -v q="$(( $("${ctl[@]}" --json status | jq -r .totp_requests) - q0 ))" \
        -v r="$(( $("${ctl[@]}" --json status | jq -r .totp_rounds) - r0 ))" \
        'BEGIN { printf "%.1f", r ? q / r : 0 }')
    phi_log "$line requests/tx=${PER_TX[$backend]}"
    phi_stop_pid "$pid"
}

floor=$("$BENCH" fsync --out "$PHI_TMP/fsync-probe" --count 2000 --label fdatasync)
rm -f "$PHI_TMP/fsync-probe"
phi_log "$floor"
run sqlite
run postgresql
floor2=$("$BENCH" fsync --out "$PHI_TMP/fsync-probe" --count 2000 --label fdatasync-after)
rm -f "$PHI_TMP/fsync-probe"

printf '\n%-22s %10s %10s %10s %12s\n' run "per_s" "p50_us" "p99_us" "requests/tx"
for l in "$floor" "${RES[sqlite]}" "${RES[postgresql]}" "$floor2"; do
    label=$(result_field "$l" label)
    case "$label" in
        phi-sqlite) tx=${PER_TX[sqlite]} ;;
        phi-postgresql) tx=${PER_TX[postgresql]} ;;
        *) tx=- ;;
    esac
    printf '%-22s %10s %10s %10s %12s\n' "$label" "$(result_field "$l" per_s)" "$(result_field "$l" p50_us)" \
        "$(result_field "$l" p99_us)" "$tx"
done
printf '\n%s verifications, %s connections; PostgreSQL 15 on a Unix socket, fsync=on, synchronous_commit=on\n' \
    "$count" "$threads"

#!/usr/bin/env bash
# fleet_pg_bench: three daemons (hosta, hostb, hostc; own mount and UTS
# namespaces, as integration.fleet_pg sets them up; the network is the
# test's, for the slapd) on one private PostgreSQL 15 (Unix socket,
# fsync=on, synchronous_commit=on), beside one daemon on an SQLite store, in
# the same run on the same disk:
#   floor      pwrite + fdatasync of a 4 KiB page (totp_bench fsync), before
#              and after;
#   sqlite     N durable TOTP verifications (totp_bench auth: AUTH requests
#              on the PAM socket over T connections, every code valid and
#              never used, so each answer waits for its watermark's commit)
#              on one daemon whose store is SQLite;
#   fleet      the same N verifications split over the three PostgreSQL
#              daemons at once (T/3 connections each, disjoint users): one
#              database, one audit tree whose row lock every round takes;
#   visible    approve on A -> the membership through glibc and nss_phi on B
#              (B woken by LISTEN/NOTIFY, the 250 ms poll behind it), p50/p99,
#              beside the same approval seen on A itself.
# Prints figures; asserts nothing.
#
# Usage: bench/fleet_pg_bench.sh [--count N] [--threads T] [--visible K];
#        defaults 285, 30, 20 (enrolment: 95 users per 10 s and backend, the
#        daemon's self-service limit). Needs root; build dir $PHI_BUILD_DIR.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.bash
source "$(dirname "$0")/../tests/lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=../tests/integration/totp-lib.bash
source "$(dirname "$0")/../tests/integration/totp-lib.bash"
# shellcheck source-path=SCRIPTDIR source=../tests/integration/nss_lib.bash
source "$(dirname "$0")/../tests/integration/nss_lib.bash"
# shellcheck source-path=SCRIPTDIR source=../tests/integration/fleet-lib.bash
source "$(dirname "$0")/../tests/integration/fleet-lib.bash"
# shellcheck source-path=SCRIPTDIR source=../tests/lib/postgres.bash
source "$(dirname "$0")/../tests/lib/postgres.bash"
phi_harness_init "$@"

visible=20 count=285 threads=30
while [ $# -gt 0 ]; do
    case "$1" in
        --visible) visible=$2; shift 2 ;;
        --count) count=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        *) phi_die "usage: fleet_pg_bench.sh [--count N] [--threads T] [--visible K]" ;;
    esac
done
command -v jq >/dev/null || phi_die "jq is missing; run ./scripts/setup"
BENCH=$PHI_BUILD_DIR/bench/totp_bench
suffix=dc=example,dc=org
HOSTS=(hosta hostb hostc)
nss_init
nss_install
phi_pg_start
TOTP_EXTRA_CONFIG="host_max_failures = 1000000"
totp_setup
phi_gen_ldif --suffix "$suffix" --users "$count" >"$PHI_TMP/users.ldif"
PHI_SLAPD_TIMEOUT=120 phi_slapd_start "$suffix" "$PHI_TMP/users.ldif"
sed -i -e "s#^uri = ldap://127.0.0.1:3999#uri = $PHI_LDAP_URI\nuser_base = ou=people,$suffix\ngroup_base = ou=groups,$suffix#" \
    -e "s#^base = .*#base = $suffix#" "$TOTP_CONF"
cat >>"$TOTP_DIR/group" <<'GROUPS'
oncall:x:3100:alice,dave
approvers:x:3101:bob
phi-bench:x:3102:
GROUPS
cat >"$TOTP_DIR/policy.conf" <<'POLICY'
[role:bench]
grant_group = phi-bench
eligible_groups = oncall
approver_groups = approvers
approvals = 1
max_duration = 1h
reason_required = no
approver_totp = no
hosts = *
POLICY
chmod 0644 "$TOTP_DIR/policy.conf"
sed -i "/^\[daemon\]/a policy = $TOTP_DIR/policy.conf" "$TOTP_CONF"

now_us() { echo "${EPOCHREALTIME/./}"; }
rate() { # COUNT MICROSECONDS
    awk -v n="$1" -v us="$2" 'BEGIN { printf "%.1f", n / (us / 1e6) }'
}
pct() { # P FILE
    sort -n "$2" | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; printf "%.1f", v[i] / 1000 }'
}
result_field() { # LINE KEY
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
synced() { # HOST
    ctl "$1" root --json status
    [ "$(jq -r .users <<<"$OUT")" = "$count" ]
}
enroll_all() { # HOST: every user enrolled through HOST's socket; secrets in $PHI_TMP/secrets
    local first=1 n e
    : >"$PHI_TMP/secrets"
    while [ "$first" -le "$count" ]; do
        n=$((count - first + 1))
        [ "$n" -le 95 ] || n=95
        e=$("$BENCH" enroll --socket "${DIR[$1]}/run/socket" --first "$first" --count "$n" --threads "$threads" \
            --out "$PHI_TMP/secrets.part")
        [ "$(result_field "$e" errors)" = 0 ] || phi_die "enrolment failed: $e"
        cat "$PHI_TMP/secrets.part" >>"$PHI_TMP/secrets"
        first=$((first + n))
        [ "$first" -gt "$count" ] || sleep 10.5
    done
}
auth() { # HOST FIRST COUNT THREADS LABEL: totp_bench auth on HOST's PAM socket
    local l
    l=$("$BENCH" auth --socket "${DIR[$1]}/run/pam" --secrets "$PHI_TMP/secrets" --first "$2" --count "$3" \
        --threads "$4" --label "$5")
    if [ "$(result_field "$l" errors)" != 0 ] || [ "$(result_field "$l" unexpected)" != 0 ]; then
        phi_die "run on $1 went wrong: $l"
    fi
    echo "$l"
}

floor=$("$BENCH" fsync --out "$PHI_TMP/fsync-probe" --count 2000 --label fdatasync)
rm -f "$PHI_TMP/fsync-probe"

# One daemon on SQLite first (its own namespaces, as a fleet host).
fleet_setup hosta hostb hostc
host_start hosta
phi_wait_for --timeout 300 --interval 0.2 --what "$count users synced on hosta" synced hosta ||
    phi_die "hosta did not load $count users"
enroll_all hosta
sqlite_line=$(auth hosta 1 "$count" "$threads" phi-sqlite)
phi_stop_pid "${PID[hosta]}"

# The three on PostgreSQL.
for h in "${HOSTS[@]}"; do
    sed -i "/^\[store\]/a backend = postgresql\nuri = $PHI_PG_URI" "${DIR[$h]}/phiaccessd.conf"
done
mkdir -p "$PHI_TMP/owner"
sed -e "s#^uri = host=.*#uri = $PHI_PG_URI_OWNER#" -e "s#^path = .*#path = $PHI_TMP/owner/phi.db#" \
    "${DIR[hosta]}/phiaccessd.conf" >"$PHI_TMP/owner.conf"
chmod 0600 "$PHI_TMP/owner.conf"
"$PHI_BUILD_DIR/phiaccessd/phiaccessd" --config "$PHI_TMP/owner.conf" --init-store >/dev/null
for h in "${HOSTS[@]}"; do host_start "$h"; done
for h in "${HOSTS[@]}"; do
    phi_wait_for --timeout 300 --interval 0.2 --what "$count users synced on $h" synced "$h" ||
        phi_die "$h did not load $count users"
done
enroll_all hosta
part=$((count / 3))
t0=$(now_us)
pids=()
i=0
for h in "${HOSTS[@]}"; do
    auth "$h" $((1 + i * part)) "$part" $((threads / 3)) "phi-pg-$h" >"$PHI_TMP/auth.$h" &
    pids+=($!)
    i=$((i + 1))
done
for p in "${pids[@]}"; do wait "$p" || phi_die "a fleet run failed"; done
t1=$(now_us)
fleet_us=$((t1 - t0))

approve_seen_on() { # HOST FILE: one request on B, approved on A, until HOST lists alice
    local t0 t1 id
    # alice's elevation calls have a budget (phiaccessd(8), LIMITS): wait
    # for it, outside the measured span; the revoke is root's (no budget).
    until ctl hostb alice request bench --for 10m && [ "$RC" = 0 ]; do
        [[ "$OUT" == *"too many elevation requests"* ]] || phi_die "request: $OUT"
        sleep 1
    done
    id=$(pair id)
    t0=$(now_us)
    ctl hosta bob approve "$id"
    [ "$RC" = 0 ] || phi_die "approve: $OUT"
    until has_member "$1" phi-bench alice; do :; done
    t1=$(now_us)
    echo $((t1 - t0)) >>"$2"
    ctl hostb root revoke "$id"
    [ "$RC" = 0 ] || phi_die "revoke: $OUT"
    until ! has_member hosta phi-bench alice && ! has_member hostb phi-bench alice; do :; done
}
: >"$PHI_TMP/local.us"
: >"$PHI_TMP/fleet.us"
for _ in $(seq "$visible"); do
    approve_seen_on hosta "$PHI_TMP/local.us"
    approve_seen_on hostb "$PHI_TMP/fleet.us"
done
listening=$(phi_pg_psql -tAc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'phiaccessd-listen'")

floor2=$("$BENCH" fsync --out "$PHI_TMP/fsync-probe" --count 2000 --label fdatasync-after)
rm -f "$PHI_TMP/fsync-probe"

printf '\nfleet_pg_bench: %s durable TOTP verifications, %s connections; %s visibility runs each way\n' \
    "$count" "$threads" "$visible"
printf '  %-46s %10s /s\n' "floor: fdatasync 4 KiB (before)" "$(result_field "$floor" per_s)"
printf '  %-46s %10s /s  p50 %s us  p99 %s us\n' "one daemon on SQLite" "$(result_field "$sqlite_line" per_s)" \
    "$(result_field "$sqlite_line" p50_us)" "$(result_field "$sqlite_line" p99_us)"
printf '  %-46s %10s /s  (%.2f x SQLite)\n' "three daemons on one PostgreSQL, at once" \
    "$(rate $((3 * part)) "$fleet_us")" \
    "$(awk -v f="$(rate $((3 * part)) "$fleet_us")" -v s="$(result_field "$sqlite_line" per_s)" 'BEGIN { print f / s }')"
for h in "${HOSTS[@]}"; do
    l=$(cat "$PHI_TMP/auth.$h")
    printf '  %-46s %10s /s  p50 %s us  p99 %s us\n' "  of which $h" "$(result_field "$l" per_s)" \
        "$(result_field "$l" p50_us)" "$(result_field "$l" p99_us)"
done
printf '  %-46s %10s /s\n' "floor: fdatasync 4 KiB (after)" "$(result_field "$floor2" per_s)"
printf '  %-46s p50 %s ms  p99 %s ms\n' "floor: approve on A -> NSS on A" "$(pct 50 "$PHI_TMP/local.us")" \
    "$(pct 99 "$PHI_TMP/local.us")"
printf '  %-46s p50 %s ms  p99 %s ms  (%s daemons listening)\n' "approve on A -> NSS on B (LISTEN/NOTIFY)" \
    "$(pct 50 "$PHI_TMP/fleet.us")" "$(pct 99 "$PHI_TMP/fleet.us")" "$listening"
for h in "${HOSTS[@]}"; do
    phi_stop_pid "${PID[$h]}"
done

#!/usr/bin/env bash
# fleet_pg_bench: three daemons (hosta, hostb, hostc; own mount, UTS and
# network namespaces) on one private PostgreSQL 15 (Unix socket, fsync=on,
# synchronous_commit=on), as integration.fleet_pg sets them up, beside one
# daemon on an SQLite store, in the same run on the same disk:
#   floor      pwrite + fdatasync of a 4 KiB page (totp_bench fsync);
#   sqlite     N PAM account checks (pam_driver; each answered after its
#              durable round with its access_granted record) on one daemon
#              whose store is SQLite;
#   fleet      N account checks on each of the three PostgreSQL daemons at
#              once (one audit tree: every round takes its row lock);
#   visible    approve on A -> the membership through glibc and nss_phi on B
#              (B woken by LISTEN/NOTIFY, the 250 ms poll behind it), p50/p99,
#              beside the same approval seen on A itself.
# Prints figures; asserts nothing.
#
# Usage: bench/fleet_pg_bench.sh [--visible K] [--checks N]; defaults 40, 200.
# Needs root; build dir $PHI_BUILD_DIR.
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

visible=40 checks=200
while [ $# -gt 0 ]; do
    case "$1" in
        --visible) visible=$2; shift 2 ;;
        --checks) checks=$2; shift 2 ;;
        *) phi_die "usage: fleet_pg_bench.sh [--visible K] [--checks N]" ;;
    esac
done
HOSTS=(hosta hostb hostc)
FLEET_NET=1
nss_init
nss_install
phi_pg_start
totp_setup
cat >>"$TOTP_DIR/group" <<'GROUPS'
oncall:x:3100:alice,dave
approvers:x:3101:bob
phi-bench:x:3102:
GROUPS
cat >"$TOTP_DIR/policy.conf" <<'POLICY'
[access:bench]
action = allow
users = dave
services = phi-bench
hosts = *

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
totp_stack phi-bench "account required $PHI_BUILD_DIR/pam_phi/pam_phi.so"

now_us() { echo "${EPOCHREALTIME/./}"; }
rate() { # COUNT MICROSECONDS
    awk -v n="$1" -v us="$2" 'BEGIN { printf "%.1f", n / (us / 1e6) }'
}
pct() { # P FILE
    sort -n "$2" | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; printf "%.1f", v[i] / 1000 }'
}
burst() { # HOST N
    local i
    for ((i = 0; i < $2; i++)); do
        [ "$(on "$1" "$PHI_BUILD_DIR/tests/pam_driver" --confdir "$TOTP_DIR/pam.d" --service phi-bench --user dave \
            --op account 2>/dev/null)" = PAM_SUCCESS ] || phi_die "account check on $1 refused"
    done
}

floor=$("$PHI_BUILD_DIR/bench/totp_bench" fsync --out "$PHI_TMP/fsync-probe" --count 2000 --label fdatasync)
rm -f "$PHI_TMP/fsync-probe"

# One daemon on SQLite first (its own namespaces, as a fleet host).
fleet_setup hosta hostb hostc
host_start hosta
t0=$(now_us)
burst hosta "$checks"
t1=$(now_us)
sqlite_us=$((t1 - t0))
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
t0=$(now_us)
pids=()
for h in "${HOSTS[@]}"; do
    burst "$h" "$checks" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
t1=$(now_us)
fleet_us=$((t1 - t0))

approve_seen_on() { # HOST FILE: one request on B, approved on A, until HOST lists alice
    local t0 t1 id
    ctl hostb alice request bench --for 10m
    [ "$RC" = 0 ] || phi_die "request: $OUT"
    id=$(pair id)
    t0=$(now_us)
    ctl hosta bob approve "$id"
    [ "$RC" = 0 ] || phi_die "approve: $OUT"
    until has_member "$1" phi-bench alice; do :; done
    t1=$(now_us)
    echo $((t1 - t0)) >>"$2"
    ctl hostb alice revoke "$id"
    until ! has_member hosta phi-bench alice && ! has_member hostb phi-bench alice; do :; done
}
: >"$PHI_TMP/local.us"
: >"$PHI_TMP/fleet.us"
for _ in $(seq "$visible"); do
    approve_seen_on hosta "$PHI_TMP/local.us"
    approve_seen_on hostb "$PHI_TMP/fleet.us"
done
listening=$(phi_pg_psql -tAc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'phiaccessd-listen'")

printf '\nfleet_pg_bench: %s account checks per daemon, %s visibility runs each way\n' "$checks" "$visible"
printf '  floor: %s\n' "$floor"
printf '  account checks, one daemon on SQLite            %8s /s\n' "$(rate "$checks" "$sqlite_us")"
printf '  account checks, three daemons on PostgreSQL     %8s /s  (%.2f x SQLite)\n' \
    "$(rate $((3 * checks)) "$fleet_us")" \
    "$(awk -v a="$sqlite_us" -v b="$fleet_us" -v n="$checks" 'BEGIN { print (3 * n / b) / (n / a) }')"
printf '  floor: approve on A -> NSS on A                 p50 %s ms  p99 %s ms\n' "$(pct 50 "$PHI_TMP/local.us")" \
    "$(pct 99 "$PHI_TMP/local.us")"
printf '  approve on A -> NSS on B (LISTEN/NOTIFY)        p50 %s ms  p99 %s ms  (%s daemons listening)\n' \
    "$(pct 50 "$PHI_TMP/fleet.us")" "$(pct 99 "$PHI_TMP/fleet.us")" "$listening"
for h in "${HOSTS[@]}"; do
    phi_stop_pid "${PID[$h]}"
done

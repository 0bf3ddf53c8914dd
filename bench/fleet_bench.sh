#!/usr/bin/env bash
# fleet_bench: daemons sharing one store (two hosts, one SQLite file), as
# integration.fleet_sqlite sets them up (tests/integration/fleet-lib.bash).
# In the same run:
#   floor      approval on A -> the membership through glibc and nss_phi on
#              A itself (A publishes before its answer leaves): phictl
#              approve plus the getent polls;
#   fleet      approval on A -> the membership on B (B's change feed: a poll
#              of the newest seq every 250 ms, then its own publication);
#   writes     N PAM account checks (pam_driver; each answered after its
#              durable round with its access_granted record) on A alone,
#              then N on A and N on B at once: the same store's write lock
#              shared by two daemons, whose rounds each first read the
#              other's appends. (Not requests: those have a per-user budget.)
# Prints figures and ratios; asserts nothing.
#
# Usage: bench/fleet_bench.sh [--visible K] [--checks N]; defaults 40, 200.
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
phi_harness_init "$@"

visible=40 requests=200
while [ $# -gt 0 ]; do
    case "$1" in
        --visible) visible=$2; shift 2 ;;
        --checks) requests=$2; shift 2 ;;
        *) phi_die "usage: fleet_bench.sh [--visible K] [--checks N]" ;;
    esac
done
command -v sqlite3 >/dev/null || phi_die "sqlite3 is missing; run ./scripts/setup"
nss_init
nss_install
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
fleet_setup hosta hostb
host_start hosta
host_start hostb

now_us() { echo "${EPOCHREALTIME/./}"; }
rate() { # COUNT MICROSECONDS
    awk -v n="$1" -v us="$2" 'BEGIN { printf "%.1f", n / (us / 1e6) }'
}
pct() { # P FILE
    sort -n "$2" | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; printf "%.1f", v[i] / 1000 }'
}
approve_seen_on() { # HOST FILE: one request on B, approved on A, until HOST lists alice
    local t0 t1 id
    ctl hostb alice request bench --for 10m
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

burst() { # HOST N
    local i
    for ((i = 0; i < $2; i++)); do
        [ "$(on "$1" "$PHI_BUILD_DIR/tests/pam_driver" --confdir "$TOTP_DIR/pam.d" --service phi-bench --user dave \
            --op account 2>/dev/null)" = PAM_SUCCESS ] || phi_die "account check on $1 refused"
    done
}
t0=$(now_us)
burst hosta "$requests"
t1=$(now_us)
one_us=$((t1 - t0))
t0=$(now_us)
burst hosta "$requests" &
a=$!
burst hostb "$requests" &
b=$!
wait "$a"
wait "$b"
t1=$(now_us)
two_us=$((t1 - t0))
records=$(sqlite3 "$SHARED/phi.db" 'SELECT COUNT(*) FROM audit_log')
gapless=$(sqlite3 "$SHARED/phi.db" 'SELECT COUNT(*) = MAX(seq) + 1 AND COUNT(DISTINCT seq) = COUNT(*) FROM audit_log')

printf '\nfleet_bench: two daemons on one SQLite store, %s visibility runs each way, %s account checks\n' "$visible" \
    "$requests"
printf '  floor: approve on A -> NSS on A      p50 %s ms  p99 %s ms\n' "$(pct 50 "$PHI_TMP/local.us")" \
    "$(pct 99 "$PHI_TMP/local.us")"
printf '  approve on A -> NSS on B (feed)      p50 %s ms  p99 %s ms\n' "$(pct 50 "$PHI_TMP/fleet.us")" \
    "$(pct 99 "$PHI_TMP/fleet.us")"
printf '  account checks, one daemon           %8s /s\n' "$(rate "$requests" "$one_us")"
printf '  account checks, two daemons at once  %8s /s  (%.2f x one daemon)\n' \
    "$(rate $((2 * requests)) "$two_us")" \
    "$(awk -v a="$one_us" -v b="$two_us" -v n="$requests" 'BEGIN { print (2 * n / b) / (n / a) }')"
printf '  audit log after the run              %s records, seqs gapless and unique: %s\n' "$records" \
    "$([ "$gapless" = 1 ] && echo yes || echo NO)"
for h in hosta hostb; do
    phi_stop_pid "${PID[$h]}"
done

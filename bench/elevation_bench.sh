#!/usr/bin/env bash
# elevation_bench: just-in-time elevation through the real daemon.
#
# In private namespaces (tests/lib/harness.bash): a journald, a slapd holding
# USERS directory users (default 100,000: the identity snapshot nss_phi maps
# is that large), and phiaccessd with a policy whose role needs one approver.
# Local accounts alice (requester) and bob (approver) come from passwd_file.
# In the same run:
#   floor      `phictl status` N times: a phictl process and one round trip
#              on the request socket, what every verb below costs at least;
#   cycles     N times `phictl request` (alice) then `phictl approve` (bob)
#              then `phictl revoke` (alice): each a durable verifier round
#              (the transition, its audit record, for approve and revoke the
#              grants file);
#   visible    for K of the approvals: from just before `phictl approve`
#              starts to the first `getent group phi-bench` (glibc, nss_phi)
#              that lists alice, beside the floor of `getent group` alone.
# Prints figures and ratios; asserts nothing.
#
# Usage: bench/elevation_bench.sh [--users N] [--cycles N] [--visible K]
#        defaults 100000, 200, 50. Needs root; build dir $PHI_BUILD_DIR.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.bash
source "$(dirname "$0")/../tests/lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=../tests/integration/nss_lib.bash
source "$(dirname "$0")/../tests/integration/nss_lib.bash"
phi_harness_init "$@"

users=100000 cycles=200 visible=50
while [ $# -gt 0 ]; do
    case "$1" in
        --users) users=$2; shift 2 ;;
        --cycles) cycles=$2; shift 2 ;;
        --visible) visible=$2; shift 2 ;;
        *) phi_die "usage: elevation_bench.sh [--users N] [--cycles N] [--visible K]" ;;
    esac
done

CTL=$PHI_BUILD_DIR/phiaccessd/phictl
DIR=$PHI_TMP/phi
suffix=dc=example,dc=org
nss_init
nss_install
mkdir -p "$DIR"
chmod 0755 "$PHI_TMP" "$PHI_RUN_DIR" "$DIR"
phi_private_dir /run/phiaccessd

# shellcheck disable=SC2119 # no options: the default journald
phi_journald_start
phi_log "directory with $users users"
phi_gen_ldif --suffix "$suffix" --users "$users" --groups 100 >"$PHI_TMP/users.ldif"
PHI_SLAPD_TIMEOUT=300 phi_slapd_start "$suffix" "$PHI_TMP/users.ldif"
rm -f "$PHI_TMP/users.ldif"

printf 'root:x:0:0:root:/root:/bin/bash\nalice:x:2001:2001::/nonexistent:/bin/sh\nbob:x:2002:2002::/nonexistent:/bin/sh\n' \
    >"$DIR/passwd"
printf 'root:x:0:\noncall:x:3100:alice\napprovers:x:3101:bob\nphi-bench:x:3102:\n' >"$DIR/group"
cat >"$DIR/policy.conf" <<'POLICY'
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
chmod 0644 "$DIR/policy.conf"
cat >"$DIR/phiaccessd.conf" <<CONF
[ldap]
uri = $PHI_LDAP_URI
base = $suffix
user_base = ou=people,$suffix
group_base = ou=groups,$suffix
tls = none
shrink_threshold = 100

[store]
path = $DIR/phi.db

[daemon]
snapshot = $NSS_SNAPSHOT
passwd_file = $DIR/passwd
group_file = $DIR/group
policy = $DIR/policy.conf

[totp]
master_key = $DIR/master.key
create_master_key = yes
CONF
chmod 0600 "$DIR/phiaccessd.conf"
phi_spawn phiaccessd "$PHI_BUILD_DIR/phiaccessd/phiaccessd" --config "$DIR/phiaccessd.conf"
phi_wait_for --timeout 15 --what "phiaccessd socket" test -S /run/phiaccessd/socket || phi_die "phiaccessd did not start"
# The first published snapshot holds the directory (uid 65534 is refused).
phi_wait_for --timeout 600 --interval 1 --what "the directory in the snapshot" \
    bash -c "'$CTL' --json status | grep '\"snapshot_generation\":[1-9]' >/dev/null" || phi_die "the directory did not load"
phi_log "snapshot: $(stat -c %s "$NSS_SNAPSHOT") bytes"

as() { # USER ARGS...
    local u=$1
    shift
    setpriv --reuid="$(awk -F: -v u="$u" '$1 == u { print $3 }' "$DIR/passwd")" \
        --regid="$(awk -F: -v u="$u" '$1 == u { print $4 }' "$DIR/passwd")" --clear-groups -- "$CTL" "$@"
}
now_us() { echo "${EPOCHREALTIME/./}"; }
rate() { # COUNT MICROSECONDS
    awk -v n="$1" -v us="$2" 'BEGIN { printf "%.1f", n / (us / 1e6) }'
}
pct() { # P FILE
    sort -n "$2" | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; printf "%.2f", v[i] / 1000 }'
}

# floor: phictl status
t0=$(now_us)
for _ in $(seq "$cycles"); do "$CTL" status >/dev/null; done
t1=$(now_us)
floor_us=$((t1 - t0))

# cycles: request, approve, revoke
t0=$(now_us)
for _ in $(seq "$cycles"); do
    id=$(as alice request bench --for 10m | sed -n 's/^id  *//p')
    as bob approve "$id" >/dev/null
    as alice revoke "$id" >/dev/null
done
t1=$(now_us)
cycle_us=$((t1 - t0))

# visible: approval -> getent lists alice
: >"$PHI_TMP/visible.us"
: >"$PHI_TMP/getent.us"
for _ in $(seq "$visible"); do
    id=$(as alice request bench --for 10m | sed -n 's/^id  *//p')
    t0=$(now_us)
    as bob approve "$id" >/dev/null
    until nss_run getent group phi-bench | grep ':alice$' >/dev/null; do :; done
    t1=$(now_us)
    echo $((t1 - t0)) >>"$PHI_TMP/visible.us"
    t0=$(now_us)
    nss_run getent group phi-bench >/dev/null
    t1=$(now_us)
    echo $((t1 - t0)) >>"$PHI_TMP/getent.us"
    as alice revoke "$id" >/dev/null
done

printf '\nelevation_bench: %s directory users (snapshot %s bytes), %s cycles, %s visibility runs\n' \
    "$("$CTL" --json status | sed -n 's/.*"users":\([0-9]*\).*/\1/p')" \
    "$(stat -c %s "$NSS_SNAPSHOT")" "$cycles" "$visible"
printf '  floor: phictl status               %8s calls/s\n' "$(rate "$cycles" "$floor_us")"
printf '  request+approve+revoke             %8s cycles/s  (%s verbs/s; each verb %.2f x the floor)\n' \
    "$(rate "$cycles" "$cycle_us")" "$(rate $((3 * cycles)) "$cycle_us")" \
    "$(awk -v c="$cycle_us" -v f="$floor_us" 'BEGIN { print c / 3 / f }')"
printf '  approval -> visible in NSS         p50 %s ms  p99 %s ms  (phictl approve + getent polls)\n' \
    "$(pct 50 "$PHI_TMP/visible.us")" "$(pct 99 "$PHI_TMP/visible.us")"
printf '  floor: one getent group            p50 %s ms  p99 %s ms\n' "$(pct 50 "$PHI_TMP/getent.us")" \
    "$(pct 99 "$PHI_TMP/getent.us")"

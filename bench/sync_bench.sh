#!/usr/bin/env bash
# sync_bench: how fast phiaccessd loads a large directory.
#
# A private slapd (tests/lib/harness.bash) is loaded with 100,000 users and
# 10,000 groups (nested, one cycle); then, in the same run:
#   peer       ldapsearch with paged results reading the same users and groups
#              to /dev/null: the directory's own read rate, the floor for any
#              client;
#   initial    phiaccessd started on an empty store until status shows every
#              user: the RFC 4533 load (read, validate, store, resolve nesting,
#              publish the NSS snapshot);
#   full       `phictl sync --full`: the paged full refresh of the same data,
#              which replaces every identity in one transaction.
# Prints users/s for each and the ratio to the peer. Needs root (namespaces).
# Usage: bench/sync_bench.sh [USERS [GROUPS]]   (defaults 100000 10000)
# Build dir: $PHI_BUILD_DIR (default build/).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.bash
source "$(dirname "$0")/../tests/lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=../tests/integration/daemon_lib.bash
source "$(dirname "$0")/../tests/integration/daemon_lib.bash"
phi_harness_init "$@"

users=${1:-100000}
groups=${2:-10000}
suffix=dc=example,dc=org
ldif=$PHI_TMP/bench.ldif

now_us() { _phi_now; echo "$_PHI_NOW_US"; }
rate() { # COUNT MICROSECONDS
    awk -v n="$1" -v us="$2" 'BEGIN { printf "%.0f", n / (us / 1e6) }'
}

phi_log "generating $users users, $groups groups"
phi_gen_ldif --suffix "$suffix" --users "$users" --groups "$groups" --nested --cycle >"$ldif"
PHI_SLAPD_TIMEOUT=120 phi_slapd_start "$suffix" "$ldif"

# Warm slapd's cache the same way for everyone, then measure the peer.
ldapsearch -x -LLL -H "$PHI_LDAP_URI" -b "$suffix" -E pr=1000/noprompt '(|(objectClass=posixAccount)(objectClass=posixGroup))' >/dev/null
t0=$(now_us)
n=$(ldapsearch -x -LLL -H "$PHI_LDAP_URI" -b "ou=people,$suffix" -E pr=1000/noprompt '(objectClass=posixAccount)' \
        uid uidNumber gidNumber gecos homeDirectory loginShell entryUUID | grep -c '^dn:')
ldapsearch -x -LLL -H "$PHI_LDAP_URI" -b "ou=groups,$suffix" -E pr=1000/noprompt '(objectClass=posixGroup)' \
    cn gidNumber memberUid member entryUUID >/dev/null
peer_us=$(( $(now_us) - t0 ))
[ "$n" = "$users" ] || phi_die "peer read $n users, expected $users"

daemon_setup
DAEMON_NETWORK_TIMEOUT=60s daemon_config "$PHI_LDAP_URI"
t0=$(now_us)
daemon_start
# uid 65534 (nobody) is refused by design, so count what the daemon took.
phi_wait_for --timeout 600 --interval 0.1 --what "initial load" status_ge full_refreshes 1 ||
    phi_die "initial load did not finish"
initial_us=$(( $(now_us) - t0 ))
loaded=$(status_get users)

t0=$(now_us)
ctl sync --full >/dev/null
full_us=$(( $(now_us) - t0 ))
[ "$(status_get users)" = "$loaded" ] || phi_die "full refresh lost users"

printf '\nsync_bench: %s users, %s groups (nested, one cycle), slapd mdb on loopback\n' "$users" "$groups"
printf '  %-44s %8.2f s  %9s users/s\n' "peer: ldapsearch paged read to /dev/null" \
    "$(awk -v u="$peer_us" 'BEGIN{print u/1e6}')" "$(rate "$users" "$peer_us")"
printf '  %-44s %8.2f s  %9s users/s  (%.2fx the peer time)\n' "phiaccessd initial load (RFC 4533)" \
    "$(awk -v u="$initial_us" 'BEGIN{print u/1e6}')" "$(rate "$users" "$initial_us")" \
    "$(awk -v a="$initial_us" -v b="$peer_us" 'BEGIN{print a/b}')"
printf '  %-44s %8.2f s  %9s users/s  (%.2fx the peer time)\n' "phiaccessd sync --full (paged)" \
    "$(awk -v u="$full_us" 'BEGIN{print u/1e6}')" "$(rate "$users" "$full_us")" \
    "$(awk -v a="$full_us" -v b="$peer_us" 'BEGIN{print a/b}')"
printf '  daemon-measured duration of the last full refresh: %s ms\n' "$(status_get last_refresh_ms)"
printf '  daemon loaded %s users (uid 65534 is refused by design), %s groups\n' "$loaded" "$(status_get groups)"
printf '  snapshot: %s\n' "$(status_get snapshot)"
phi_pass "benchmark ran"

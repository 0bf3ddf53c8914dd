#!/usr/bin/env bash
# A directory user's primary group is held to min_gid like any group: the
# directory never shadows a local system group through a user's gidNumber.
# A private slapd holds 20 ordinary users and three with low primary gids:
# mallory (gidNumber 27, sudo's group on Debian), zero (0) and usr100 (100,
# Debian's `users`). phiaccessd syncs it and publishes the snapshot where
# nss_phi, installed where glibc finds it in a private mount namespace, reads
# it. Then
#   - default config: all three are refused with their reason and counted in
#     entries_rejected; getent/id do not know them; mallory, whose uid reaches
#     the daemon's socket, is not a member of the local phi-admins (gid 27);
#   - primary_gids_allowed = 100 (after a restart): usr100 is served with gid
#     100, mallory and zero still are not; the snapshot header carries the list;
#   - --check-config refuses primary_gids_allowed = 0 even listed;
#   - a hand-made snapshot whose user record says gid 27 is not served.
# shellcheck disable=SC2119 # harness functions take optional arguments
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=daemon_lib.bash
source "$(dirname "$0")/daemon_lib.bash"
# shellcheck source-path=SCRIPTDIR source=nss_lib.bash
source "$(dirname "$0")/nss_lib.bash"
phi_harness_init "$@"
nss_init
[ -x "$PHI_DAEMON" ] || phi_die "phiaccessd is not built"

suffix=dc=example,dc=org
phi_gen_ldif --suffix "$suffix" --users 20 --groups 2 >"$PHI_TMP/dir.ldif"
low_user() { # NAME UID GID
    cat <<LDIF

dn: uid=$1,ou=people,$suffix
objectClass: top
objectClass: inetOrgPerson
objectClass: posixAccount
uid: $1
cn: $1
sn: $1
uidNumber: $2
gidNumber: $3
homeDirectory: /home/$1
loginShell: /bin/bash
LDIF
}
{ low_user mallory 5000 27; low_user zero 5001 0; low_user usr100 5002 100; } >>"$PHI_TMP/dir.ldif"
phi_slapd_start "$suffix" "$PHI_TMP/dir.ldif"
phi_journald_start
nss_install

daemon_setup
DAEMON_SNAPSHOT=$NSS_SNAPSHOT
# On this host the local admin group happens to have gid 27: a directory user
# with gidNumber 27 would be its member through its primary group.
printf 'root:x:0:\nphi-admins:x:27:\nusers:x:100:\n' >"$DAEMON_DIR/group"
grep -v '^root:' "$DAEMON_DIR/group" >>"$PHI_TMP/group"
daemon_config "$PHI_LDAP_URI"
# Other uids must reach the socket (it is 0666 by design; the test's temp dirs are 0700).
chmod 755 "$PHI_RUN_DIR" "$PHI_TMP" "$DAEMON_DIR" "$DAEMON_DIR/run"
daemon_start

# ------------------------------------------------------------ default: refused
phi_check "the daemon loads the 20 ordinary users" wait_users 20
phi_check "the three low primary gids are counted as rejected" phi_wait_for --timeout 20 status_ge entries_rejected 3
for u in mallory usr100; do
    phi_check "$u is logged as skipped for its primary group" \
        grep -q "skipping directory entry uid=$u,ou=people,$suffix: gidNumber (primary group) is below min_gid and not in primary_gids_allowed" \
        "$PHI_TMP/phiaccessd.log"
done
phi_check "zero (gidNumber 0) is logged as skipped" grep -q "skipping directory entry uid=zero,.*gidNumber" "$PHI_TMP/phiaccessd.log"
phi_check "the daemon publishes a snapshot" phi_wait_for --timeout 30 test -s "$NSS_SNAPSHOT"
phi_check "the snapshot verifies" "$NSS_MKSNAP" --verify "$NSS_SNAPSHOT"
phi_assert_eq "$(nss_run getent passwd user00001 | cut -d: -f1,3,4)" user00001:10001:20001 "an ordinary user is served"
phi_check_fails "getent passwd mallory (gidNumber 27): not found" nss_run getent passwd mallory
phi_check_fails "getent passwd 5000: not found" nss_run getent passwd 5000
phi_check_fails "id mallory: no such user" nss_run id mallory
phi_check_fails "getent passwd zero (gidNumber 0): not found" nss_run getent passwd zero
phi_check_fails "getent passwd usr100 (gidNumber 100, not allowed): not found" nss_run getent passwd usr100
phi_assert_not_contains "$(nss_run getent passwd | cut -d: -f1)" mallory "mallory is not enumerated"

# mallory's uid calling the daemon: not an admin through the local gid 27.
rc=0; out=$(setpriv --reuid=5000 --regid=5000 --clear-groups "$PHI_CTL" --socket "$DAEMON_SOCKET" sync 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "uid 5000 (mallory) may not sync: not in phi-admins (gid 27)"
phi_assert_contains "$out" "members of phi-admins" "the refusal names who may"

# --------------------------------------------- primary_gids_allowed = 100
daemon_stop
DAEMON_EXTRA="primary_gids_allowed = 100" daemon_config "$PHI_LDAP_URI"
phi_check "--check-config accepts primary_gids_allowed = 100" "$PHI_DAEMON" --check-config --config "$DAEMON_CONF"
daemon_start
# shellcheck disable=SC2016 # expanded by the inner bash
phi_check "usr100 arrives once 100 is allowed" phi_wait_for --timeout 30 \
    bash -c '"$0" --dump "$1" | grep -q "^usr100:"' "$NSS_MKSNAP" "$NSS_SNAPSHOT"
phi_assert_eq "$(nss_run getent passwd usr100 | cut -d: -f1,3,4)" usr100:5002:100 "getent passwd usr100: primary gid 100"
phi_assert_eq "$(nss_run id -g usr100)" 100 "id -g usr100: 100"
phi_assert_contains "$("$NSS_MKSNAP" --dump "$NSS_SNAPSHOT" | awk 'NR == 1')" "primary_gids 100" "the snapshot header carries the allowed list"
phi_check_fails "mallory (27) is still not served" nss_run getent passwd mallory
phi_check_fails "zero (0) is still not served" nss_run getent passwd zero
daemon_stop

# ------------------------------------------------------------ 0 never
DAEMON_EXTRA="primary_gids_allowed = 100, 0" daemon_config "$PHI_LDAP_URI"
rc=0; out=$("$PHI_DAEMON" --check-config --config "$DAEMON_CONF" 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "--check-config refuses primary_gids_allowed with 0 in it"
phi_assert_contains "$out" "gid 0 is root's group" "the error says why"

# ------------------------------------------- a hand-made snapshot with gid 27
"$NSS_MKSNAP" --user forged:6000:20001 --user honest:6001:20001 --group-add staff:20001 \
    --member staff:forged --forge-gid forged:27 "$NSS_SNAPSHOT"
phi_assert_eq "$(nss_run getent passwd honest | cut -d: -f1,4)" honest:20001 "the hand-made snapshot is in use"
phi_check_fails "its user with primary gid 27 is not served" nss_run getent passwd forged
phi_check_fails "nor by uid" nss_run getent passwd 6000
phi_check_fails "id forged: no such user" nss_run id forged

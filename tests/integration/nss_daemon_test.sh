#!/usr/bin/env bash
# nss_phi end to end with phiaccessd: the daemon syncs a private slapd (10,000
# users, 2,000 groups, biguser in all 2,000) and publishes the snapshot at its
# real path; the module, installed where glibc finds it in a private mount
# namespace, then
#   - agrees with the directory: getent passwd, getent group, id (initgroups);
#   - keeps answering while the daemon replaces the snapshot under 4 threads
#     looping on lookups (no error, no stale answer after the swap);
#   - keeps answering with the daemon stopped.
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
[ -x "$NSS_HAMMER" ] || phi_die "phi-nss-hammer is not built"

suffix=dc=example,dc=org
phi_gen_ldif --suffix "$suffix" --users 10000 --groups 2000 --user-in-groups 2000 >"$PHI_TMP/dir.ldif"
phi_slapd_start "$suffix" "$PHI_TMP/dir.ldif"
phi_journald_start
nss_install

daemon_setup
DAEMON_SNAPSHOT=$NSS_SNAPSHOT       # where the module reads it
daemon_config "$PHI_LDAP_URI"
# The daemon's local files are the ones glibc sees: user00002 is local.
cp "$DAEMON_DIR/passwd" "$PHI_TMP/daemon.passwd"
grep -v '^root:' "$DAEMON_DIR/passwd" >>"$PHI_TMP/passwd"
grep -v '^root:' "$DAEMON_DIR/group" >>"$PHI_TMP/group"
daemon_start
phi_check "the daemon loads 10,001 users" wait_users 10001
phi_check "the daemon publishes a snapshot" phi_wait_for --timeout 30 test -s "$NSS_SNAPSHOT"
phi_check "the snapshot verifies" "$NSS_MKSNAP" --verify "$NSS_SNAPSHOT"

nss_directory_files "$suffix"
# The daemon keeps a name that is also local out of the snapshot.
grep -v '^user00002:' "$PHI_TMP/dir.passwd" >"$PHI_TMP/want.passwd"

nss_run getent passwd | grep -vxFf "$PHI_TMP/passwd" | sort >"$PHI_TMP/got.passwd"
phi_check "getent passwd agrees with the directory (10,000 users)" diff -u "$PHI_TMP/want.passwd" "$PHI_TMP/got.passwd"
nss_run getent group | grep -vxFf "$PHI_TMP/group" | nss_normalize_groups >"$PHI_TMP/got.group"
phi_check "getent group agrees with the directory (2,000 groups)" diff -u "$PHI_TMP/dir.group.norm" "$PHI_TMP/got.group"
phi_assert_eq "$(nss_run id -G biguser | tr ' ' '\n' | sort -un)" "$(nss_expected_gids biguser)" "id biguser agrees: 2,000 groups"
phi_assert_eq "$(nss_run id -G user04711 | tr ' ' '\n' | sort -un)" "$(nss_expected_gids user04711)" "id user04711 agrees"
phi_assert_eq "$(nss_run getent passwd user00002 | cut -d: -f3)" 1500 "the local user00002 wins"

# ---------------------------------------------------------------- swap under load
nss_run "$NSS_HAMMER" 4 user00001 10001 grp00001 newbie 60 >"$PHI_TMP/hammer.out" 2>&1 &
hammer_pid=$!
phi_check "4 threads looping on lookups" phi_wait_for --timeout 20 grep -qx ready "$PHI_TMP/hammer.out"
gen_before=$("$NSS_MKSNAP" --dump "$NSS_SNAPSHOT" | awk 'NR == 1 { print $3 }')
# A few changes first (each a new snapshot), then the marker user.
for i in 1 2 3; do
    phi_ldapmodify >/dev/null <<LDIF
dn: uid=user0010$i,ou=people,$suffix
changetype: modify
replace: loginShell
loginShell: /bin/sh$i
LDIF
    # shellcheck disable=SC2016 # expanded by the inner bash
    phi_wait_for --timeout 20 bash -c '"$0" --dump "$1" | grep -q "^user0010$2:.*:/bin/sh$2\$"' \
        "$NSS_MKSNAP" "$NSS_SNAPSHOT" "$i" || phi_fail "change $i did not reach the snapshot"
done
phi_ldapmodify >/dev/null <<LDIF
dn: uid=newbie,ou=people,$suffix
changetype: add
objectClass: inetOrgPerson
objectClass: posixAccount
uid: newbie
cn: New Bie
sn: Bie
uidNumber: 50001
gidNumber: 20001
homeDirectory: /home/newbie
loginShell: /bin/bash
LDIF
rc=0
wait "$hammer_pid" || rc=$?
phi_assert_eq "$rc" 0 "no error and no stale answer across the swaps: $(tr '\n' ' ' <"$PHI_TMP/hammer.out")"
gen_after=$("$NSS_MKSNAP" --dump "$NSS_SNAPSHOT" | awk 'NR == 1 { print $3 }')
phi_check "the daemon replaced the snapshot at least 4 times ($gen_before -> $gen_after)" \
    test "$gen_after" -ge $((gen_before + 4))
phi_assert_eq "$(nss_run getent passwd user00102 | cut -d: -f7)" /bin/sh2 "a change made in the directory is served"

# ---------------------------------------------------------------- daemon stopped
daemon_stop
phi_assert_eq "$(nss_run getent passwd newbie | cut -d: -f3)" 50001 "daemon stopped: lookups still answer"
phi_assert_eq "$(nss_run id -G biguser | wc -w)" 2000 "daemon stopped: initgroups still answers"

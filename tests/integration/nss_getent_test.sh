#!/usr/bin/env bash
# nss_phi through the real glibc path, without the daemon: the directory in a
# private slapd (10,000 users, 2,000 groups, biguser in all 2,000) is read back
# with ldapsearch into passwd/group files, phi-mksnapshot (the daemon's own
# builder and writer) turns them into a snapshot, and then
#   1. through nss_wrapper (NSS_WRAPPER_MODULE_SO_PATH): getent passwd, getent
#      group and id agree with the directory, entry for entry;
#   2. installed as glibc would find it, in a private mount namespace:
#      libnss_phi.so.2 in the library directory, the snapshot at its real path,
#      /etc/nsswitch.conf saying `files phi`: getent and id agree; local names
#      win over directory ones; root is never the module's; a grant whose expiry
#      passes disappears from id; without a snapshot the local files still answer.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=nss_lib.bash
source "$(dirname "$0")/nss_lib.bash"
phi_harness_init "$@"
nss_init

suffix=dc=example,dc=org
phi_gen_ldif --suffix "$suffix" --users 10000 --groups 2000 --user-in-groups 2000 >"$PHI_TMP/dir.ldif"
phi_slapd_start "$suffix" "$PHI_TMP/dir.ldif"
nss_directory_files "$suffix"
phi_assert_eq "$(wc -l <"$PHI_TMP/dir.passwd")" 10001 "directory has 10,000 users and biguser"
phi_assert_eq "$(wc -l <"$PHI_TMP/dir.group")" 2000 "directory has 2,000 groups"

"$NSS_MKSNAP" --passwd <(sed 's/:\*:/:x:/' "$PHI_TMP/dir.passwd") --group <(sed 's/:\*:/:x:/' "$PHI_TMP/dir.group") \
    --min-uid 1000 --min-gid 1000 --generation 1 "$PHI_TMP/nss.snapshot"
phi_check "snapshot verifies" "$NSS_MKSNAP" --verify "$PHI_TMP/nss.snapshot"

# ---------------------------------------------------------------------------
# 1. nss_wrapper: the module loaded by path, local files holding only root.

NSS_WRAPPED_SNAPSHOT=$PHI_TMP/nss.snapshot
nss_wrapped getent passwd | grep -v '^root:' | sort >"$PHI_TMP/got.passwd"
phi_check "nss_wrapper: getent passwd lists exactly the directory's users" \
    diff -u "$PHI_TMP/dir.passwd" "$PHI_TMP/got.passwd"
nss_wrapped getent group | grep -v '^root:' | nss_normalize_groups >"$PHI_TMP/got.group"
phi_check "nss_wrapper: getent group lists exactly the directory's groups and members" \
    diff -u "$PHI_TMP/dir.group.norm" "$PHI_TMP/got.group"
phi_assert_eq "$(nss_wrapped getent passwd user04242)" "$(grep '^user04242:' "$PHI_TMP/dir.passwd")" "nss_wrapper: getent passwd by name"
phi_assert_eq "$(nss_wrapped getent passwd 14242)" "$(grep '^user04242:' "$PHI_TMP/dir.passwd")" "nss_wrapper: getent passwd by uid"
phi_assert_eq "$(nss_wrapped getent group 21234 | nss_normalize_groups)" "$(grep '^grp01234:' "$PHI_TMP/dir.group.norm")" "nss_wrapper: getent group by gid"
phi_assert_eq "$(nss_wrapped id -G biguser | tr ' ' '\n' | sort -un)" "$(nss_expected_gids biguser)" "nss_wrapper: id biguser lists its 2,000 groups"
phi_assert_eq "$(nss_wrapped id -G user00007 | tr ' ' '\n' | sort -un)" "$(nss_expected_gids user00007)" "nss_wrapper: id user00007"
phi_assert_eq "$(nss_wrapped getent passwd root)" "root:x:0:0:root:/root:/bin/bash" "nss_wrapper: root comes from the files"
phi_check_fails "nss_wrapper: unknown user is not found" nss_wrapped getent passwd nosuchuser

# ---------------------------------------------------------------------------
# 2. glibc's own path: the module where glibc looks for it, the snapshot where
# the daemon writes it, all inside this test's mount namespace.

nss_install
cp "$PHI_TMP/nss.snapshot" "$NSS_SNAPSHOT.tmp" && mv "$NSS_SNAPSHOT.tmp" "$NSS_SNAPSHOT"
# A local account with a directory user's name: the local one must win.
echo 'user00005:x:4005:4005:local:/nonexistent:/usr/sbin/nologin' >>"$PHI_TMP/passwd"

# Everything getent lists beyond the local files comes from the module
# (enumeration lists both user00005s; a lookup by name finds the local one).
nss_run getent passwd | grep -vxFf "$PHI_TMP/passwd" | sort >"$PHI_TMP/ns.passwd"
phi_check "glibc: getent passwd lists the directory's users" diff -u "$PHI_TMP/dir.passwd" "$PHI_TMP/ns.passwd"
nss_run getent group | grep -vxFf "$PHI_TMP/group" | nss_normalize_groups >"$PHI_TMP/ns.group"
phi_check "glibc: getent group lists the directory's groups" diff -u "$PHI_TMP/dir.group.norm" "$PHI_TMP/ns.group"
phi_assert_eq "$(nss_run getent passwd user09999)" "$(grep '^user09999:' "$PHI_TMP/dir.passwd")" "glibc: getent passwd by name"
phi_assert_eq "$(nss_run getent passwd 10001)" "$(grep '^user00001:' "$PHI_TMP/dir.passwd")" "glibc: getent passwd by uid"
phi_assert_eq "$(nss_run getent group grp02000 | nss_normalize_groups)" "$(grep '^grp02000:' "$PHI_TMP/dir.group.norm")" "glibc: getent group by name"
phi_assert_eq "$(nss_run id -G biguser | tr ' ' '\n' | sort -un)" "$(nss_expected_gids biguser)" "glibc: id biguser (initgroups_dyn) lists 2,000 groups"
phi_assert_eq "$(nss_run id -G biguser | wc -w)" 2000 "glibc: biguser has 2,000 groups"
phi_assert_eq "$(nss_run id -G user00100 | tr ' ' '\n' | sort -un)" "$(nss_expected_gids user00100)" "glibc: id user00100"
phi_assert_eq "$(nss_run getent passwd user00005 | cut -d: -f3)" 4005 "glibc: a local name wins over the directory's"
phi_assert_eq "$(nss_run getent passwd root | cut -d: -f1,3)" "root:0" "glibc: root comes from the files"

# A grant expiring a few seconds from now, published the daemon's way (atomic
# replace): present, then gone with nobody touching the file again. Whether it is
# still in force when id runs depends on the clock, not on how fast this machine
# is: it is checked only when id finished before the expiry.
expires=$(($(date +%s) + 6))
"$NSS_MKSNAP" --passwd <(sed 's/:\*:/:x:/' "$PHI_TMP/dir.passwd") --group <(sed 's/:\*:/:x:/' "$PHI_TMP/dir.group") \
    --group-add phi-dba:30000 --member "phi-dba:user00002:$expires" --generation 2 "$NSS_SNAPSHOT"
groups_now=$(nss_run id -Gn user00002)
if [ "$(date +%s)" -lt "$expires" ]; then
    phi_assert_contains "$groups_now" phi-dba "glibc: the grant is in force before its expiry"
fi
grant_gone() {
    ! nss_run id -Gn user00002 | grep -qw phi-dba
}
if phi_wait_for --timeout 15 --what "grant to expire" -- grant_gone; then
    phi_pass "glibc: an expired grant is gone from id"
else
    phi_fail "glibc: grant still listed after its expiry: $(nss_run id -Gn user00002)"
fi
phi_assert_not_contains "$(nss_run getent group phi-dba)" user00002 "glibc: expired grant gone from getent group"

# No snapshot: the module is unavailable and glibc carries on with the files.
rm -f "$NSS_SNAPSHOT"
phi_check_fails "glibc: no snapshot, no directory user" nss_run getent passwd user00042
phi_assert_eq "$(nss_run getent passwd root | cut -d: -f1)" root "glibc: local files still answer without a snapshot"

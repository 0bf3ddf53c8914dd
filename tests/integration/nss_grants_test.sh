#!/usr/bin/env bash
# Elevation grants through the real glibc path, with no daemon at all: the
# identity snapshot and the grants snapshot are written by the test tools
# (phi-mksnapshot, phi-mkgrants: the daemon's own writers), the module is
# installed where glibc finds it and /etc/nsswitch.conf says `files phi`, all
# in a private mount namespace. Shown:
#   - a grant of a local group (phi-dba in /etc/group, as a role's group
#     usually is): `id` and `getent initgroups` (initgroups, what sudo's
#     group_source=dynamic reads) gain the gid after the publication;
#     `getent group phi-dba` shows the local members only (files answers
#     first), and with `group: files [SUCCESS=merge] phi` the grantee too;
#   - a group only the grants file has, and a directory group with a grantee
#     added: getent group lists them;
#   - expiry: the memberships vanish when the grants end, nobody touching the
#     files again;
#   - a corrupt grants file serves no grant while the directory still answers.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=nss_lib.bash
source "$(dirname "$0")/nss_lib.bash"
phi_harness_init "$@"
nss_init
MKGRANTS=$PHI_BUILD_DIR/tests/tools/phi-mkgrants
[ -x "$MKGRANTS" ] || phi_die "build the tree first ($MKGRANTS)"
GRANTS=/var/lib/phiaccessd/grants.snapshot

nss_install
# users user00001..user01000 (uid 10000+i), groups grp00001..grp00100 (gid 20000+j)
"$NSS_MKSNAP" --synthetic 1000:100:5 --generation 1 "$NSS_SNAPSHOT"
# The role's group is a local one, with a local member.
echo 'opsadmin:x:4000:4000:local:/nonexistent:/usr/sbin/nologin' >>"$PHI_TMP/passwd"
echo 'phi-dba:x:30000:opsadmin' >>"$PHI_TMP/group"
printf 'passwd: files phi\ngroup: files [SUCCESS=merge] phi\n' >"$PHI_TMP/nsswitch.merge"
nss_run_merge() {
    (
        unset LD_PRELOAD PHI_NSS_SNAPSHOT
        # shellcheck disable=SC2031 # a subshell on purpose
        [ -z "$NSS_SAN_PRELOAD" ] || export LD_PRELOAD=$NSS_SAN_PRELOAD
        phi_ns_run --bind "$PHI_TMP/nsswitch.merge:/etc/nsswitch.conf" \
            --bind "$PHI_TMP/passwd:/etc/passwd" --bind "$PHI_TMP/group:/etc/group" -- "$@"
    )
}
# The daemon publishes a grants file at start-up, with no grants in it.
"$MKGRANTS" --generation 1 "$GRANTS"
phi_check "an empty grants file is sound" "$MKGRANTS" --dump "$GRANTS"
phi_check_fails "no phiaccessd in this test" pgrep -x phiaccessd

# ---------------------------------------------------------------------------
# Before the grant.
phi_assert_eq "$(nss_run getent group phi-dba)" "phi-dba:x:30000:opsadmin" "before: phi-dba has its local member only"
phi_assert_not_contains "$(nss_run id -Gn user00002)" phi-dba "before: user00002 is not in phi-dba"
phi_assert_not_contains "$(nss_run getent initgroups user00002)" 30000 "before: initgroups of user00002 lacks 30000"
phi_check_fails "before: phi-ops does not exist" nss_run getent group phi-ops
phi_assert_eq "$(nss_run getent group grp00007 | cut -d: -f4)" \
    "user00031,user00032,user00033,user00034,user00035" "before: grp00007's directory members"

# ---------------------------------------------------------------------------
# Approval: one publication of the grants file, the identity snapshot untouched.
snap_inode=$(stat -c %i "$NSS_SNAPSHOT")
expires=$(($(date +%s) + 8))
"$MKGRANTS" --generation 2 --grant "phi-dba:30000:user00002:$expires:41" \
    --grant "phi-ops:30001:user00003:$expires:42" --grant "grp00007:20007:user00999:$expires:43" "$GRANTS"
phi_assert_eq "$(stat -c %i "$NSS_SNAPSHOT")" "$snap_inode" "a grant does not rewrite the identity snapshot"
phi_assert_eq "$("$MKGRANTS" --dump "$GRANTS" | grep -c -v '^#')" 3 "the grants file holds three grants"
id_now=$(nss_run id -Gn user00002)
initgroups_now=$(nss_run getent initgroups user00002)
group_now=$(nss_run getent group phi-dba)
merged_now=$(nss_run_merge getent group phi-dba)
ops_now=$(nss_run getent group phi-ops)
ops_gid_now=$(nss_run getent group 30001)
grp7_now=$(nss_run getent group grp00007 | cut -d: -f4)
if [ "$(date +%s)" -lt "$expires" ]; then
    phi_assert_contains "$id_now" phi-dba "granted: id user00002 lists phi-dba (initgroups through phi, name from files)"
    phi_assert_match "$initgroups_now" '(^|[[:space:]])30000([[:space:]]|$)' "granted: getent initgroups user00002 has 30000"
    phi_assert_eq "$group_now" "phi-dba:x:30000:opsadmin" \
        "granted: getent group phi-dba still shows the local line (files answers first)"
    phi_assert_eq "$merged_now" "phi-dba:x:30000:opsadmin,user00002" \
        "granted: with [SUCCESS=merge] getent group phi-dba lists the grantee"
    phi_assert_eq "$ops_now" "phi-ops:*:30001:user00003" "granted: a group only the grants file has"
    phi_assert_eq "$ops_gid_now" "phi-ops:*:30001:user00003" "granted: the same group by gid"
    phi_assert_eq "$grp7_now" "user00031,user00032,user00033,user00034,user00035,user00999" \
        "granted: a directory group lists its grantee after its members"
else
    phi_log "this machine took past the grants' expiry before the first look; in-force checks skipped"
fi
phi_assert_not_contains "$(nss_run id -Gn user00004)" phi-dba "granted: another user is not in phi-dba"

# ---------------------------------------------------------------------------
# Expiry, with nobody writing either file.
grants_gone() {
    ! nss_run id -Gn user00002 | grep -qw phi-dba &&
        [ "$(nss_run getent group phi-ops)" = "phi-ops:*:30001:" ]
}
if phi_wait_for --timeout 20 --what "grants to expire" -- grants_gone; then
    phi_pass "expired: phi-dba gone from id user00002, phi-ops has no member"
else
    phi_fail "grants still in force after their expiry" "$(nss_run id -Gn user00002)" "$(nss_run getent group phi-ops)"
fi
phi_assert_not_contains "$(nss_run getent initgroups user00002)" 30000 "expired: initgroups of user00002 lacks 30000"
phi_assert_eq "$(nss_run_merge getent group phi-dba)" "phi-dba:x:30000:opsadmin" "expired: the merged line is the local one again"
phi_assert_eq "$(nss_run getent group grp00007 | cut -d: -f4)" \
    "user00031,user00032,user00033,user00034,user00035" "expired: grp00007 back to its directory members"
phi_assert_contains "$("$MKGRANTS" --dump "$GRANTS")" "user00002:$expires:41!" "the file still lists the grant, marked over"

# ---------------------------------------------------------------------------
# A corrupt grants file: no grant served, the directory still is.
expires=$(($(date +%s) + 600))
"$MKGRANTS" --generation 3 --grant "phi-dba:30000:user00002:$expires:44" "$GRANTS"
phi_assert_contains "$(nss_run id -Gn user00002)" phi-dba "a new grant is in force"
cp "$GRANTS" "$PHI_TMP/grants.bad"
printf '\x01' | dd of="$PHI_TMP/grants.bad" bs=1 seek=$(($(stat -c %s "$GRANTS") - 3)) conv=notrunc status=none
cp "$PHI_TMP/grants.bad" "$GRANTS.tmp" && mv "$GRANTS.tmp" "$GRANTS"
phi_check_fails "the damaged file does not verify" "$MKGRANTS" --dump "$GRANTS"
phi_assert_not_contains "$(nss_run id -Gn user00002)" phi-dba "corrupt grants file: no grant served"
phi_assert_eq "$(nss_run getent passwd user00002 | cut -d: -f1,3)" "user00002:10002" "corrupt grants file: the directory still answers"
rm -f "$GRANTS"
phi_assert_not_contains "$(nss_run id -Gn user00002)" phi-dba "no grants file: no grant served"
phi_assert_eq "$(nss_run getent group grp00007 | cut -d: -f1)" grp00007 "no grants file: the directory's groups still answer"

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
phi_harness_init "$@"

module=$PHI_BUILD_DIR/nss_phi/libnss_phi.so.2
mksnap=$PHI_BUILD_DIR/tests/tools/phi-mksnapshot
suffix=dc=example,dc=org
if [ ! -r "$module" ] || [ ! -x "$mksnap" ]; then
    phi_skip "build the tree first ($module, $mksnap)"
fi
wrapper=$(ldconfig -p | awk '/libnss_wrapper.so / { print $NF; exit }')
[ -n "$wrapper" ] || phi_skip "libnss_wrapper is not installed"
# The sanitizer build's module needs its runtimes loaded first in every program
# that loads it (getent, id); leak reports from those programs are not ours.
san_preload=$(ldd "$module" | awk '/libasan|libubsan/ { printf "%s%s", sep, $3; sep = " " }')
if [ -n "$san_preload" ]; then
    export ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
fi
libdir=$(dirname "$(ldconfig -p | awk '/libnss_files\.so\.2 / { print $NF; exit }')")

# ---------------------------------------------------------------------------
# The directory, and what it says as passwd and group lines.

phi_gen_ldif --suffix "$suffix" --users 10000 --groups 2000 --user-in-groups 2000 >"$PHI_TMP/dir.ldif"
phi_slapd_start "$suffix" "$PHI_TMP/dir.ldif"

# LDIF (unwrapped, -LLL) to passwd lines; the module serves "*" as password.
phi_ldapsearch -b "ou=people,$suffix" '(objectClass=posixAccount)' \
    uid uidNumber gidNumber gecos homeDirectory loginShell | awk -F': ' '
    function flush() { if (uid != "") print uid ":*:" un ":" gn ":" gecos ":" home ":" shell; uid = "" }
    /^dn: / { flush(); gecos = ""; home = ""; shell = "" }
    $1 == "uid" { uid = $2 } $1 == "uidNumber" { un = $2 } $1 == "gidNumber" { gn = $2 }
    $1 == "gecos" { gecos = $2 } $1 == "homeDirectory" { home = $2 } $1 == "loginShell" { shell = $2 }
    END { flush() }' | sort >"$PHI_TMP/dir.passwd"
phi_ldapsearch -b "ou=groups,$suffix" '(objectClass=posixGroup)' cn gidNumber memberUid | awk -F': ' '
    function flush() { if (cn != "") print cn ":*:" gn ":" mem; cn = "" }
    /^dn: / { flush(); mem = "" }
    $1 == "cn" { cn = $2 } $1 == "gidNumber" { gn = $2 }
    $1 == "memberUid" { mem = mem (mem == "" ? "" : ",") $2 }
    END { flush() }' | sort >"$PHI_TMP/dir.group"
phi_assert_eq "$(wc -l <"$PHI_TMP/dir.passwd")" 10001 "directory has 10,000 users and biguser"
phi_assert_eq "$(wc -l <"$PHI_TMP/dir.group")" 2000 "directory has 2,000 groups"

# Group lines with their members sorted, so that member order does not matter.
normalize_groups() {
    awk -F: -v OFS=: '{ n = split($4, m, ","); s = "";
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (m[j] < m[i]) { t = m[i]; m[i] = m[j]; m[j] = t }
        for (i = 1; i <= n; i++) s = s (i > 1 ? "," : "") m[i]; $4 = s; print }' | sort
}
normalize_groups <"$PHI_TMP/dir.group" >"$PHI_TMP/dir.group.norm"

# The gids `id -G USER` must print: primary first, then every group listing USER.
expected_gids() {
    local user=$1 primary
    primary=$(awk -F: -v u="$user" '$1 == u { print $4 }' "$PHI_TMP/dir.passwd")
    { echo "$primary"; awk -F: -v u="$user" '{ n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) print $3 }' \
        "$PHI_TMP/dir.group"; } | sort -un
}

"$mksnap" --passwd <(sed 's/:\*:/:x:/' "$PHI_TMP/dir.passwd") --group <(sed 's/:\*:/:x:/' "$PHI_TMP/dir.group") \
    --min-uid 1000 --min-gid 1000 --generation 1 "$PHI_TMP/nss.snapshot"
phi_check "snapshot verifies" "$mksnap" --verify "$PHI_TMP/nss.snapshot"

# ---------------------------------------------------------------------------
# 1. nss_wrapper: the module loaded by path, local files holding only root.

printf 'root:x:0:0:root:/root:/bin/bash\n' >"$PHI_TMP/local.passwd"
printf 'root:x:0:\n' >"$PHI_TMP/local.group"
nssw() {
    LD_PRELOAD="$san_preload${san_preload:+ }$wrapper" NSS_WRAPPER_PASSWD=$PHI_TMP/local.passwd NSS_WRAPPER_GROUP=$PHI_TMP/local.group \
        NSS_WRAPPER_MODULE_SO_PATH=$module NSS_WRAPPER_MODULE_FN_PREFIX=phi \
        PHI_NSS_SNAPSHOT=$PHI_TMP/nss.snapshot "$@"
}

nssw getent passwd | grep -v '^root:' | sort >"$PHI_TMP/got.passwd"
phi_check "nss_wrapper: getent passwd lists exactly the directory's users" \
    diff -u "$PHI_TMP/dir.passwd" "$PHI_TMP/got.passwd"
nssw getent group | grep -v '^root:' | normalize_groups >"$PHI_TMP/got.group"
phi_check "nss_wrapper: getent group lists exactly the directory's groups and members" \
    diff -u "$PHI_TMP/dir.group.norm" "$PHI_TMP/got.group"
phi_assert_eq "$(nssw getent passwd user04242)" "$(grep '^user04242:' "$PHI_TMP/dir.passwd")" "nss_wrapper: getent passwd by name"
phi_assert_eq "$(nssw getent passwd 14242)" "$(grep '^user04242:' "$PHI_TMP/dir.passwd")" "nss_wrapper: getent passwd by uid"
phi_assert_eq "$(nssw getent group 21234 | normalize_groups)" "$(grep '^grp01234:' "$PHI_TMP/dir.group.norm")" "nss_wrapper: getent group by gid"
phi_assert_eq "$(nssw id -G biguser | tr ' ' '\n' | sort -un)" "$(expected_gids biguser)" "nss_wrapper: id biguser lists its 2,000 groups"
phi_assert_eq "$(nssw id -G user00007 | tr ' ' '\n' | sort -un)" "$(expected_gids user00007)" "nss_wrapper: id user00007"
phi_assert_eq "$(nssw getent passwd root)" "root:x:0:0:root:/root:/bin/bash" "nss_wrapper: root comes from the files"
phi_check_fails "nss_wrapper: unknown user is not found" nssw getent passwd nosuchuser

# ---------------------------------------------------------------------------
# 2. glibc's own path: the module where glibc looks for it, the snapshot where
# the daemon writes it, all inside this test's mount namespace.

[ -d "$libdir" ] || phi_die "cannot find glibc's NSS library directory"
phi_private_dir "$libdir/phi-nss-test"            # makes $libdir a private overlay
cp "$module" "$libdir/libnss_phi.so.2"
phi_private_dir /var/lib/phiaccessd
snapshot=/var/lib/phiaccessd/nss.snapshot
cp "$PHI_TMP/nss.snapshot" "$snapshot.tmp" && mv "$snapshot.tmp" "$snapshot"

printf 'passwd: files phi\ngroup: files phi\nshadow: files\n' >"$PHI_TMP/nsswitch.conf"
cp /etc/passwd "$PHI_TMP/passwd"
cp /etc/group "$PHI_TMP/group"
# A local account with a directory user's name: the local one must win.
echo 'user00005:x:4005:4005:local:/nonexistent:/usr/sbin/nologin' >>"$PHI_TMP/passwd"
ns() {
    (
        unset LD_PRELOAD PHI_NSS_SNAPSHOT
        [ -z "$san_preload" ] || export LD_PRELOAD=$san_preload
        phi_ns_run --bind "$PHI_TMP/nsswitch.conf:/etc/nsswitch.conf" \
            --bind "$PHI_TMP/passwd:/etc/passwd" --bind "$PHI_TMP/group:/etc/group" -- "$@"
    )
}

# Everything getent lists beyond the local files comes from the module.
ns getent passwd | grep -vxFf "$PHI_TMP/passwd" | sort >"$PHI_TMP/ns.passwd"
# (Enumeration lists both user00005s; a lookup by name finds the local one.)
phi_check "glibc: getent passwd lists the directory's users" diff -u "$PHI_TMP/dir.passwd" "$PHI_TMP/ns.passwd"
ns getent group | grep -vxFf "$PHI_TMP/group" | normalize_groups >"$PHI_TMP/ns.group"
phi_check "glibc: getent group lists the directory's groups" diff -u "$PHI_TMP/dir.group.norm" "$PHI_TMP/ns.group"
phi_assert_eq "$(ns getent passwd user09999)" "$(grep '^user09999:' "$PHI_TMP/dir.passwd")" "glibc: getent passwd by name"
phi_assert_eq "$(ns getent passwd 10001)" "$(grep '^user00001:' "$PHI_TMP/dir.passwd")" "glibc: getent passwd by uid"
phi_assert_eq "$(ns getent group grp02000 | normalize_groups)" "$(grep '^grp02000:' "$PHI_TMP/dir.group.norm")" "glibc: getent group by name"
phi_assert_eq "$(ns id -G biguser | tr ' ' '\n' | sort -un)" "$(expected_gids biguser)" "glibc: id biguser (initgroups_dyn) lists 2,000 groups"
phi_assert_eq "$(ns id -G biguser | wc -w)" 2000 "glibc: biguser has 2,000 groups"
phi_assert_eq "$(ns id -G user00100 | tr ' ' '\n' | sort -un)" "$(expected_gids user00100)" "glibc: id user00100"
phi_assert_eq "$(ns getent passwd user00005 | cut -d: -f3)" 4005 "glibc: a local name wins over the directory's"
phi_assert_eq "$(ns getent passwd root | cut -d: -f1,3)" "root:0" "glibc: root comes from the files"

# A grant expiring 3 seconds from now, published the daemon's way (atomic
# replace): present, then gone with nobody touching the file again.
expires=$(($(date +%s) + 3))
"$mksnap" --passwd <(sed 's/:\*:/:x:/' "$PHI_TMP/dir.passwd") --group <(sed 's/:\*:/:x:/' "$PHI_TMP/dir.group") \
    --group-add phi-dba:30000 --member "phi-dba:user00002:$expires" --generation 2 "$snapshot"
if [ "$(date +%s)" -lt $((expires - 1)) ]; then
    phi_assert_contains "$(ns id -Gn user00002)" phi-dba "glibc: the grant is in force before its expiry"
fi
grant_gone() {
    ! ns id -Gn user00002 | grep -qw phi-dba
}
if phi_wait_for --timeout 15 --what "grant to expire" -- grant_gone; then
    phi_pass "glibc: an expired grant is gone from id"
else
    phi_fail "glibc: grant still listed after its expiry: $(ns id -Gn user00002)"
fi
phi_assert_not_contains "$(ns getent group phi-dba)" user00002 "glibc: expired grant gone from getent group"

# No snapshot: the module is unavailable and glibc carries on with the files.
rm -f "$snapshot"
phi_check_fails "glibc: no snapshot, no directory user" ns getent passwd user00042
phi_assert_eq "$(ns getent passwd root | cut -d: -f1)" root "glibc: local files still answer without a snapshot"

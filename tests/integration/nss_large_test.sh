#!/usr/bin/env bash
# Entries larger than glibc's first buffer, through glibc's own NSS path (not
# nss_wrapper, which passes the module its own errno variable and so hides the
# bug this test is about): libnss_phi.so.2 where glibc looks for it, the
# snapshot at its real path and an nsswitch.conf saying `files phi`, all in
# this test's private mount namespace. glibc calls the module with
# errnop == &errno and grows its buffer only when the module answers TRYAGAIN
# with ERANGE there; getent and id start with 1 KiB. So
#   - groups of 100, 5,000 and 50,000 members by name, by gid and by
#     enumeration (every group listed, none skipped or cut);
#   - a user in 2,000 groups of 100 members each: `id -nG` names every group;
#   - a user whose gecos and home take 2 KB: by name, by uid, enumerated.
# The snapshot is built by phi-mksnapshot (the daemon's builder and writer).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=nss_lib.bash
source "$(dirname "$0")/nss_lib.bash"
phi_harness_init "$@"
nss_init

# 50,000 users userNNNNN (uid 10000+N), biguser (9999) and longuser (9998);
# grp00001..grp02000 (gid 20000+N) with 100 users each and biguser; team100,
# allstaff and everyone with the first 100, 5,000 and 50,000 users.
long_gecos=$(printf 'G%.0s' {1..1000})
long_home=/home/$(printf 'h%.0s' {1..1000})
awk -v gecos="$long_gecos" -v home="$long_home" 'BEGIN {
    for (i = 1; i <= 50000; i++) printf "user%05d:*:%d:20001:User %05d:/home/user%05d:/bin/bash\n", i, 10000 + i, i, i
    print "biguser:*:9999:20001:Big User:/home/biguser:/bin/bash"
    print "longuser:*:9998:20001:" gecos ":" home ":/bin/bash"
}' >"$PHI_TMP/dir.passwd"
awk 'BEGIN {
    for (j = 1; j <= 2000; j++) {
        printf "grp%05d:*:%d:", j, 20000 + j
        for (t = 0; t < 100; t++) printf "user%05d,", ((j - 1) * 100 + t) % 50000 + 1
        print "biguser"
    }
    n = split("team100:30100:100 allstaff:30200:5000 everyone:30300:50000", g, " ")
    for (k = 1; k <= n; k++) {
        split(g[k], f, ":")
        printf "%s:*:%d:", f[1], f[2]
        for (i = 1; i <= f[3]; i++) printf "%suser%05d", (i > 1 ? "," : ""), i
        print ""
    }
}' >"$PHI_TMP/dir.group"
"$NSS_MKSNAP" --passwd <(sed 's/:\*:/:x:/' "$PHI_TMP/dir.passwd") --group <(sed 's/:\*:/:x:/' "$PHI_TMP/dir.group") \
    --generation 1 "$PHI_TMP/nss.snapshot"
phi_check "snapshot with a 50,000-member group verifies" "$NSS_MKSNAP" --verify "$PHI_TMP/nss.snapshot"

nss_install
cp "$PHI_TMP/nss.snapshot" "$NSS_SNAPSHOT.tmp" && mv "$NSS_SNAPSHOT.tmp" "$NSS_SNAPSHOT"

# want NAME: the line the directory gives NAME in dir.group or dir.passwd.
want_group() { grep -m1 "^$1:" "$PHI_TMP/dir.group"; }
want_user() { grep -m1 "^$1:" "$PHI_TMP/dir.passwd"; }

# Members come out in the order they were added, so lines compare exactly.
for spec in team100:30100:100 allstaff:30200:5000 everyone:30300:50000; do
    IFS=: read -r name gid count <<<"$spec"
    want_group "$name" >"$PHI_TMP/want.$name"
    nss_run getent group "$name" >"$PHI_TMP/got.$name" || true
    phi_check "getent group $name ($count members) by name" cmp "$PHI_TMP/want.$name" "$PHI_TMP/got.$name"
    nss_run getent group "$gid" >"$PHI_TMP/got.$gid" || true
    phi_check "getent group $gid ($count members) by gid" cmp "$PHI_TMP/want.$name" "$PHI_TMP/got.$gid"
    phi_assert_eq "$(cut -d: -f4 "$PHI_TMP/got.$gid" | tr ',' '\n' | grep -c .)" "$count" "group $name has $count members"
done

# Enumeration: every group, in the snapshot's order, none left out after a
# too-small buffer (nor repeated).
nss_run getent group | grep -vxFf "$PHI_TMP/group" >"$PHI_TMP/got.enum.group" || true
phi_assert_eq "$(wc -l <"$PHI_TMP/got.enum.group")" 2003 "getent group enumerates all 2,003 directory groups"
phi_check "enumerated groups are the directory's, members and all" cmp "$PHI_TMP/dir.group" "$PHI_TMP/got.enum.group"

# A user in 2,000 groups of 101 members: id asks getgrgid for each name.
nss_run id -nG biguser >"$PHI_TMP/id.out" 2>"$PHI_TMP/id.err" || true
phi_assert_eq "$(cat "$PHI_TMP/id.err")" "" "id -nG biguser: no 'cannot find name for group ID'"
tr ' ' '\n' <"$PHI_TMP/id.out" | sort >"$PHI_TMP/id.names"
awk -F: '$1 ~ /^grp/ { print $1 }' "$PHI_TMP/dir.group" | sort >"$PHI_TMP/want.names"
phi_check "id -nG biguser names all 2,000 groups" cmp "$PHI_TMP/want.names" "$PHI_TMP/id.names"
phi_assert_eq "$(nss_run id -G biguser | wc -w)" 2000 "id -G biguser: 2,000 gids"

# A passwd entry over 2 KB: by name, by uid, and in the enumeration.
want_user longuser >"$PHI_TMP/want.longuser"
nss_run getent passwd longuser >"$PHI_TMP/got.longuser" || true
phi_check "getent passwd longuser (2 KB entry) by name" cmp "$PHI_TMP/want.longuser" "$PHI_TMP/got.longuser"
nss_run getent passwd 9998 >"$PHI_TMP/got.9998" || true
phi_check "getent passwd 9998 (2 KB entry) by uid" cmp "$PHI_TMP/want.longuser" "$PHI_TMP/got.9998"
nss_run getent passwd | grep -vxFf "$PHI_TMP/passwd" >"$PHI_TMP/got.enum.passwd" || true
phi_check "getent passwd enumerates all 50,002 users, longuser included" cmp "$PHI_TMP/dir.passwd" "$PHI_TMP/got.enum.passwd"

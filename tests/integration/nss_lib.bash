# shellcheck shell=bash disable=SC2034 # the variables are for the tests that source this
# Helpers shared by the nss_phi integration tests (nss_*_test.sh), on top of
# tests/lib/harness.bash. Source after harness.bash, call after phi_harness_init.

NSS_MODULE=$PHI_BUILD_DIR/nss_phi/libnss_phi.so.2
NSS_MKSNAP=$PHI_BUILD_DIR/tests/tools/phi-mksnapshot
NSS_HAMMER=$PHI_BUILD_DIR/tests/tools/phi-nss-hammer
NSS_SNAPSHOT=/var/lib/phiaccessd/nss.snapshot

# nss_init: checks the build, finds nss_wrapper and glibc's module directory, and
# sets NSS_SAN_PRELOAD: the sanitizer build's module needs its runtimes loaded
# first in every program that loads it (getent, id); leak reports from those
# programs are not ours.
nss_init() {
    if [ ! -r "$NSS_MODULE" ] || [ ! -x "$NSS_MKSNAP" ]; then
        phi_die "build the tree first ($NSS_MODULE, $NSS_MKSNAP)"
    fi
    NSS_WRAPPER_LIB=$(ldconfig -p | awk '/libnss_wrapper.so / && !n++ { print $NF }')
    [ -n "$NSS_WRAPPER_LIB" ] || phi_die "libnss_wrapper is missing (libnss-wrapper); run ./scripts/setup"
    NSS_LIBDIR=$(dirname "$(ldconfig -p | awk '/libnss_files\.so\.2 / && !n++ { print $NF }')")
    [ -d "$NSS_LIBDIR" ] || phi_die "cannot find glibc's NSS library directory"
    NSS_SAN_PRELOAD=$(ldd "$NSS_MODULE" | awk '/libasan|libubsan/ { printf "%s%s", sep, $3; sep = " " }')
    if [ -n "$NSS_SAN_PRELOAD" ]; then
        export ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
    fi
}

# nss_directory_files SUFFIX: what the directory in the running slapd says, as
# $PHI_TMP/dir.passwd and dir.group (sorted lines; "*" as the password, which is
# what the module serves), dir.group.norm (members sorted).
nss_directory_files() {
    local suffix=$1
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
    nss_normalize_groups <"$PHI_TMP/dir.group" >"$PHI_TMP/dir.group.norm"
}

# Group lines with their members sorted, so that member order does not matter.
nss_normalize_groups() {
    awk -F: -v OFS=: '{ n = split($4, m, ","); s = "";
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (m[j] < m[i]) { t = m[i]; m[i] = m[j]; m[j] = t }
        for (i = 1; i <= n; i++) s = s (i > 1 ? "," : "") m[i]; $4 = s; print }' | sort
}

# nss_expected_gids USER: the gids `id -G USER` must print (sorted): the
# primary one and every directory group listing USER.
nss_expected_gids() {
    local user=$1 primary
    primary=$(awk -F: -v u="$user" '$1 == u { print $4 }' "$PHI_TMP/dir.passwd")
    { echo "$primary"; awk -F: -v u="$user" '{ n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) print $3 }' \
        "$PHI_TMP/dir.group"; } | sort -un
}

# nss_wrapped CMD...: CMD with the module loaded by nss_wrapper, local files
# $PHI_TMP/local.passwd and local.group (created with root only if missing),
# the snapshot $NSS_WRAPPED_SNAPSHOT.
nss_wrapped() {
    [ -e "$PHI_TMP/local.passwd" ] || printf 'root:x:0:0:root:/root:/bin/bash\n' >"$PHI_TMP/local.passwd"
    [ -e "$PHI_TMP/local.group" ] || printf 'root:x:0:\n' >"$PHI_TMP/local.group"
    LD_PRELOAD="$NSS_SAN_PRELOAD${NSS_SAN_PRELOAD:+ }$NSS_WRAPPER_LIB" \
        NSS_WRAPPER_PASSWD=$PHI_TMP/local.passwd NSS_WRAPPER_GROUP=$PHI_TMP/local.group \
        NSS_WRAPPER_MODULE_SO_PATH=$NSS_MODULE NSS_WRAPPER_MODULE_FN_PREFIX=phi \
        PHI_NSS_SNAPSHOT=$NSS_WRAPPED_SNAPSHOT "$@"
}

# nss_install: the module where glibc looks for it and an empty
# /var/lib/phiaccessd, both private to this test's mount namespace; an
# nsswitch.conf saying `files phi` and copies of the host's passwd and group
# ($PHI_TMP/passwd, $PHI_TMP/group: append local accounts there) for nss_run.
nss_install() {
    phi_private_dir "$NSS_LIBDIR/phi-nss-test"      # makes the library dir a private overlay
    cp "$NSS_MODULE" "$NSS_LIBDIR/libnss_phi.so.2"
    phi_private_dir /var/lib/phiaccessd
    printf 'passwd: files phi\ngroup: files phi\nshadow: files\n' >"$PHI_TMP/nsswitch.conf"
    cp /etc/passwd "$PHI_TMP/passwd"
    cp /etc/group "$PHI_TMP/group"
}

# nss_run CMD...: CMD through glibc's own NSS path as installed by nss_install.
nss_run() {
    (
        unset LD_PRELOAD PHI_NSS_SNAPSHOT
        [ -z "$NSS_SAN_PRELOAD" ] || export LD_PRELOAD=$NSS_SAN_PRELOAD
        phi_ns_run --bind "$PHI_TMP/nsswitch.conf:/etc/nsswitch.conf" \
            --bind "$PHI_TMP/passwd:/etc/passwd" --bind "$PHI_TMP/group:/etc/group" -- "$@"
    )
}

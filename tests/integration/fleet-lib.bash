# shellcheck shell=bash disable=SC2034 # OUT, RC, SHARED: for the scripts that source this
# Helpers for daemons that share one store, as a fleet's hosts do, on one
# machine (fleet_sqlite_test.sh, bench/fleet_bench.sh). Source after
# harness.bash, totp-lib.bash and nss_lib.bash; call fleet_setup HOST... after
# totp_setup and nss_install (it builds each host's configuration from
# $TOTP_CONF), then host_start HOST for each.
#
# Each host gets a mount and UTS namespace of its own: its hostname, its
# /run/phiaccessd (sockets) and /var/lib/phiaccessd (NSS files) bound from
# $PHI_TMP/HOST, its own audit key (made beforehand, so that every daemon
# trusts the others' from its first round; all in $PHI_TMP/fleet.keys). The
# shared part of the store is one SQLite file in one directory, so that its
# -wal and -shm are the same for every host; what is a host's own beside it
# (the identity file, named after the store's path, and the instance lock)
# is bound over from the host's directory. FLEET_NET=1 gives each host a
# network namespace of its own too (only its loopback, down): what it shares
# with the others is then only the filesystem (fleet_pg_test.sh reaches
# PostgreSQL on a Unix socket).

FLEET_ORIGIN=clinic.example/phi-audit
FLEET_OWN_FILES=(phi-identities.db phi-identities.db-wal phi-identities.db-shm phi.db.lock)
declare -gA DIR=() PID=() VKEY=()
: "${FLEET_NET:=}"

# fleet_setup HOST...: the shared store, and each host's directory, key and
# configuration ($PHI_TMP/HOST/phiaccessd.conf). FLEET_EXTRA_AUDIT: more
# [audit] lines.
fleet_setup() {
    local h d f
    SHARED=$PHI_TMP/shared
    mkdir -p "$SHARED"
    chmod 0700 "$SHARED"
    # An empty database in WAL mode; the first daemon makes the tables (and
    # the master key): start one host before the others.
    sqlite3 "$SHARED/phi.db" 'PRAGMA journal_mode=WAL' >/dev/null
    chmod 0600 "$SHARED/phi.db"
    for f in "${FLEET_OWN_FILES[@]}"; do
        : >"$SHARED/$f"
        chmod 0600 "$SHARED/$f"
    done
    : >"$PHI_TMP/fleet.keys"
    for h in "$@"; do
        d=$PHI_TMP/$h
        DIR[$h]=$d
        mkdir -p "$d/run" "$d/lib" "$d/store"
        chmod 0755 "$d" "$d/run" "$d/lib"
        chmod 0700 "$d/store"
        # Each host's identities file in WAL mode before any daemon opens it:
        # switching an empty file to WAL goes through a rollback journal,
        # beside the shared path where every host would find it (two hosts
        # starting at once read each other's as hot: EIO).
        sqlite3 "$d/store/phi-identities.db" 'PRAGMA journal_mode=WAL;' >/dev/null
        for f in "${FLEET_OWN_FILES[@]}"; do
            [ "$f" = phi-identities.db ] || : >"$d/store/$f"
            chmod 0600 "$d/store/$f"
        done
        "$PHI_BUILD_DIR/tests/tools/phi-audit-mkexport" keygen "$h/phi-audit" "$d/audit.key" "$d/audit.key.pub"
        chmod 0600 "$d/audit.key"
        VKEY[$h]=$(cat "$d/audit.key.pub")
        echo "${VKEY[$h]}" >>"$PHI_TMP/fleet.keys"
        sed -e "s#^path = .*#path = $SHARED/phi.db#" -e "s#^snapshot = .*#snapshot = $NSS_SNAPSHOT#" \
            "$TOTP_CONF" >"$d/phiaccessd.conf"
        printf '\n[audit]\nkey = %s\norigin = %s\ntrusted_keys = %s\n%s\n' \
            "$d/audit.key" "$FLEET_ORIGIN" "$PHI_TMP/fleet.keys" "${FLEET_EXTRA_AUDIT:-}" >>"$d/phiaccessd.conf"
        chmod 0600 "$d/phiaccessd.conf"
    done
    chmod 0644 "$PHI_TMP/fleet.keys"
}

# host_start HOST: the daemon in its namespaces; waits for its socket.
host_start() {
    local h=$1 d=${DIR[$1]} net=()
    [ -z "$FLEET_NET" ] || net=(--net)
    # shellcheck disable=SC2016 # expanded by the inner bash
    phi_spawn "phiaccessd-$h" unshare --mount --uts "${net[@]}" --propagation private -- bash -c '
        h=$1 d=$2 shared=$3 exe=$4
        shift 4
        hostname "$h" && mount --bind "$d/run" /run/phiaccessd && mount --bind "$d/lib" /var/lib/phiaccessd ||
            exit 125
        for f in "$@"; do
            mount --bind "$d/store/$f" "$shared/$f" || exit 125
        done
        exec "$exe" --config "$d/phiaccessd.conf"' phi-host "$h" "$d" "$SHARED" \
        "$PHI_BUILD_DIR/phiaccessd/phiaccessd" "${FLEET_OWN_FILES[@]}"
    PID[$h]=$PHI_LAST_PID
    phi_wait_for --timeout 15 --what "phiaccessd on $h" test -S "$d/run/socket" || phi_die "phiaccessd on $h did not start"
}

# on HOST CMD...: CMD in HOST's namespaces (its sockets, its NSS files).
on() {
    local h=$1 net=()
    shift
    [ -z "$FLEET_NET" ] || net=(--net)
    nsenter --target "${PID[$h]}" --mount --uts "${net[@]}" -- "$@"
}

# ctl HOST USER ARGS...: phictl on HOST as USER; output in OUT, status in RC.
ctl() {
    local h=$1 user=$2
    shift 2
    RC=0
    if [ "$user" = root ]; then
        OUT=$(on "$h" "$PHI_BUILD_DIR/phiaccessd/phictl" "$@" 2>&1) || RC=$?
    else
        OUT=$(on "$h" setpriv --reuid="${TOTP_UID[$user]}" --regid="${TOTP_UID[$user]}" --clear-groups -- \
            "$PHI_BUILD_DIR/phiaccessd/phictl" "$@" 2>&1) || RC=$?
    fi
}

# pair KEY: its value in OUT (phictl's aligned KEY VALUE lines).
pair() {
    sed -n "s/^$1  *//p" <<<"$OUT" | sed -n 1p
}

# members HOST GROUP: the members glibc (files, then nss_phi) lists on HOST.
# Only this getent has nsswitch.conf saying phi: the sanitizer build's module
# would break every other program of the host's namespace.
members() {
    # shellcheck disable=SC2016 # expanded by the inner sh
    on "$1" env PRELOAD="$NSS_SAN_PRELOAD" unshare --mount --propagation private -- sh -c '
        mount --bind "$1" /etc/nsswitch.conf && mount --bind "$2" /etc/passwd && mount --bind "$3" /etc/group ||
            exit 125
        shift 3
        [ -z "$PRELOAD" ] || export LD_PRELOAD="$PRELOAD"
        exec getent group "$1"' nss-run "$PHI_TMP/nsswitch.conf" "$PHI_TMP/passwd" "$PHI_TMP/group" "$2" |
        cut -d: -f4 || true
}

# has_member HOST GROUP USER
has_member() {
    [[ ",$(members "$1" "$2")," == *",$3,"* ]]
}

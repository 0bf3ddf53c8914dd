# shellcheck shell=bash
# Helpers shared by the phiaccessd integration tests (daemon_*_test.sh), on top
# of tests/lib/harness.bash. Source after harness.bash.

PHI_DAEMON=$PHI_BUILD_DIR/phiaccessd/phiaccessd
PHI_CTL=$PHI_BUILD_DIR/phiaccessd/phictl

# daemon_setup: directories and local account files for one daemon.
daemon_setup() {
    DAEMON_DIR=$PHI_TMP/daemon
    mkdir -p "$DAEMON_DIR/state" "$DAEMON_DIR/run"
    chmod 700 "$DAEMON_DIR/state"
    DAEMON_CONF=$DAEMON_DIR/phiaccessd.conf
    DAEMON_SOCKET=$DAEMON_DIR/run/socket
    DAEMON_SNAPSHOT=$DAEMON_DIR/state/nss.snapshot
    DAEMON_STORE=$DAEMON_DIR/state/phi.db
    # Local accounts as the host's files would hold them; user00002 is also in the
    # directory and must be kept out of the snapshot.
    printf 'root:x:0:0:root:/root:/bin/bash\nuser00002:x:1500:1500:local:/home/l:/bin/sh\n' >"$DAEMON_DIR/passwd"
    printf 'root:x:0:\nphi-admins:x:1600:\n' >"$DAEMON_DIR/group"
    export PHI_SOCKET=$DAEMON_SOCKET
}

# daemon_config URI... : writes the config (extra [ldap] lines from $DAEMON_EXTRA).
daemon_config() {
    local uris="$*"
    cat >"$DAEMON_CONF" <<CONF
# phiaccessd.conf written by a test
[ldap]
uri = $uris
base = $PHI_LDAP_BASE
user_base = ou=people,$PHI_LDAP_BASE
group_base = ou=groups,$PHI_LDAP_BASE
tls = none
network_timeout = ${DAEMON_NETWORK_TIMEOUT:-3s}
${DAEMON_EXTRA:-}

[store]
path = $DAEMON_STORE

[daemon]
socket = $DAEMON_SOCKET
pam_socket = $DAEMON_DIR/run/pam
snapshot = $DAEMON_SNAPSHOT
admin_group = phi-admins
passwd_file = $DAEMON_DIR/passwd
group_file = $DAEMON_DIR/group
CONF
    chmod 644 "$DAEMON_CONF"
}

daemon_start() {
    phi_spawn phiaccessd "$PHI_DAEMON" --foreground --config "$DAEMON_CONF"
    DAEMON_PID=$PHI_LAST_PID
    phi_wait_for --timeout 10 --what "phiaccessd socket" test -S "$DAEMON_SOCKET" ||
        phi_die "phiaccessd did not create its socket; log:"$'\n'"$(tail -n 30 "$PHI_TMP/phiaccessd.log")"
}

daemon_stop() {
    phi_stop_pid "$DAEMON_PID"
}

ctl() {
    "$PHI_CTL" --socket "$DAEMON_SOCKET" "$@"
}

# status_get KEY: one value of `phictl status`.
status_get() {
    ctl --json status | jq -r --arg k "$1" '.[$k]'
}

status_is() { # KEY VALUE
    [ "$(status_get "$1")" = "$2" ]
}

status_ge() { # KEY NUMBER
    local v
    v=$(status_get "$1")
    [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge "$2" ]
}

# wait_synced USERS: until the daemon reports that many users from a live sync.
wait_users() {
    phi_wait_for --timeout "${2:-60}" --what "$1 users in status" status_is users "$1"
}

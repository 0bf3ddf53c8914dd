#!/usr/bin/env bash
# The audit trail of logins when journald stalls: logins are still answered
# while journald is frozen (an answer never waits for its journal entry), and
# phiaccessd stopped with entries still waiting for journald hands every one
# of them over before it exits -- none is dropped on the way out. Also: the
# daemon's threads carry names, and SIGINT stops it like SIGTERM.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

# A datagram socket takes this many messages before a sender blocks. The
# limit belongs to this test's network namespace and is read when a socket is
# made, so it is set before journald creates its sockets: with 2, three
# entries fill journald's socket and the rest wait inside phiaccessd.
echo 2 >/proc/sys/net/unix/max_dgram_qlen
totp_setup
totp_daemon_start
totp_stack phi-auth "auth required $PHI_BUILD_DIR/pam_phi/pam_phi.so"
# libpam logs (to journald, which will be frozen) when a stack has no "other".
totp_stack other "auth required pam_deny.so" "account required pam_deny.so" \
    "password required pam_deny.so" "session required pam_deny.so"
for u in "${TOTP_USERS[@]}"; do
    totp_enroll "$u"
done

# The threads are named, so that ps -L, top -H and perf tell them apart.
phi_assert_eq "$(sort /proc/"$TOTP_DAEMON_PID"/task/*/comm | tr '\n' ' ')" \
    "phi-journal phi-ldap-sync phi-verifier phiaccessd " "the daemon's thread names"

cur=$(phi_journal_cursor)
# If a check fails while journald is frozen, the harness's clean-up still ends
# it (SIGKILL after the grace period works on a stopped process).
kill -STOP "$PHI_JOURNALD_PID"
for u in "${TOTP_USERS[@]}"; do
    step=$(totp_fresh_step "$u")
    phi_assert_eq "$(totp_pam phi-auth "$u" --answer "$(totp_code "$u" "$step")")" PAM_SUCCESS \
        "with journald frozen, $u's login is answered"
done

kill -TERM "$TOTP_DAEMON_PID"
sleep 1
phi_check "stopped with entries journald has not taken, phiaccessd waits for it" _phi_alive "$TOTP_DAEMON_PID"
kill -CONT "$PHI_JOURNALD_PID"
phi_check "once journald runs again, phiaccessd exits" \
    phi_wait_for --timeout 10 --what "phiaccessd exit" eval "! _phi_alive $TOTP_DAEMON_PID"
status=0
wait "$TOTP_DAEMON_PID" || status=$?
phi_assert_eq "$status" 0 "phiaccessd's exit status"

journaled=$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok |
    jq -r .PHI_USER | sort | tr '\n' ' ')
phi_assert_eq "$journaled" "$(printf '%s\n' "${TOTP_USERS[@]}" | sort | tr '\n' ' ')" \
    "every login answered before the stop has its auth_ok entry"

# SIGINT stops the daemon as SIGTERM does, also when its parent left SIGINT
# ignored, as a shell does for a background job (the daemon blocks it, and a
# blocked signal is queued for the event loop's signalfd, ignored or not).
rm -f "$TOTP_SOCKET" /run/phiaccessd/pam
phi_spawn phiaccessd bash -c 'trap "" INT; exec "$@"' sh "$PHI_BUILD_DIR/phiaccessd/phiaccessd" --config "$TOTP_CONF"
TOTP_DAEMON_PID=$PHI_LAST_PID
phi_wait_for --timeout 15 --what "phiaccessd socket" test -S "$TOTP_SOCKET" || phi_die "phiaccessd did not start"
kill -INT "$TOTP_DAEMON_PID"
phi_check "SIGINT stops phiaccessd" \
    phi_wait_for --timeout 10 --what "phiaccessd exit" eval "! _phi_alive $TOTP_DAEMON_PID"
status=0
wait "$TOTP_DAEMON_PID" || status=$?
phi_assert_eq "$status" 0 "phiaccessd's exit status after SIGINT"

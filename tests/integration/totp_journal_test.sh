#!/usr/bin/env bash
# The audit trail of logins when journald stalls: logins are still answered
# while journald is frozen (an answer never waits for its journal entry), and
# phiaccessd stopped with entries still waiting for journald hands every one
# of them over before it exits -- none is dropped on the way out. A stalled
# daemon does not check, once it runs again, the logins pam_phi gave up on.
# Also: the daemon's threads carry names, and SIGINT stops it like SIGTERM.
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

# The daemon itself stalls (SIGSTOP here; a hung disk in life): pam_phi gives
# up at its timeout and denies. The request still waits in the socket, and
# when the daemon runs again it must not check it: that would use up the code
# and journal an acceptance for a login that was denied.
totp_stack phi-auth-1s "auth required $PHI_BUILD_DIR/pam_phi/pam_phi.so timeout=1"
step=$(totp_fresh_step alice)
code=$(totp_code alice "$step")
kill -STOP "$TOTP_DAEMON_PID"
phi_assert_eq "$(totp_pam phi-auth-1s alice --answer "$code")" PAM_AUTHINFO_UNAVAIL \
    "with the daemon stalled, pam_phi denies at its timeout"
cur=$(phi_journal_cursor)
kill -CONT "$TOTP_DAEMON_PID"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PRIORITY=5)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" \
    "1 login request was given up by its client before being served; not checked, no code used up" \
    "running again, the daemon skips the request its client gave up"
phi_check_fails "and journals no acceptance for it" phi_journal_wait --timeout 1 --after "$cur" \
    SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok PHI_USER=alice
phi_assert_eq "$(totp_pam phi-auth alice --answer "$code")" PAM_SUCCESS \
    "the code of the denied login was not used up: it passes now"
TOTP_LAST[alice]=$step

cur=$(phi_journal_cursor)
# If a check fails while journald is frozen, the harness's clean-up still ends
# it (SIGKILL after the grace period works on a stopped process).
kill -STOP "$PHI_JOURNALD_PID"
frozen_users=("${TOTP_USERS[@]:1}")   # alice's fresh code is a step away
for u in "${frozen_users[@]}"; do
    step=$(totp_fresh_step "$u")
    phi_assert_eq "$(totp_pam phi-auth "$u" --answer "$(totp_code "$u" "$step")")" PAM_SUCCESS \
        "with journald frozen, $u's login is answered"
done

# daemon_exits_0 WHAT WHAT_STATUS: phiaccessd exits within 10 s, with status 0.
daemon_exits_0() {
    local status=0
    phi_check "$1" phi_wait_for --timeout 10 --what "phiaccessd exit" eval "! _phi_alive $TOTP_DAEMON_PID"
    wait "$TOTP_DAEMON_PID" || status=$?
    phi_assert_eq "$status" 0 "$2"
}

kill -TERM "$TOTP_DAEMON_PID"
sleep 1
phi_check "stopped with entries journald has not taken, phiaccessd waits for it" _phi_alive "$TOTP_DAEMON_PID"
kill -CONT "$PHI_JOURNALD_PID"
daemon_exits_0 "once journald runs again, phiaccessd exits" "phiaccessd's exit status"

journaled=$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok |
    jq -r .PHI_USER | sort | tr '\n' ' ')
phi_assert_eq "$journaled" "$(printf '%s\n' "${frozen_users[@]}" | sort | tr '\n' ' ')" \
    "every login answered before the stop has its auth_ok entry"

# SIGINT stops the daemon as SIGTERM does, also when its parent left SIGINT
# ignored, as a shell does for a background job (the daemon blocks it, and a
# blocked signal is queued for the event loop's signalfd, ignored or not).
rm -f "$TOTP_SOCKET" /run/phiaccessd/pam
phi_spawn phiaccessd bash -c 'trap "" INT; exec "$@"' sh "$PHI_BUILD_DIR/phiaccessd/phiaccessd" --config "$TOTP_CONF"
TOTP_DAEMON_PID=$PHI_LAST_PID
phi_wait_for --timeout 15 --what "phiaccessd socket" test -S "$TOTP_SOCKET" || phi_die "phiaccessd did not start"
kill -INT "$TOTP_DAEMON_PID"
daemon_exits_0 "SIGINT stops phiaccessd" "phiaccessd's exit status after SIGINT"

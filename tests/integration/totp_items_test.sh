#!/usr/bin/env bash
# The PAM items pam_phi forwards (service, remote host, terminal) end up in
# journal messages people read. A value with a control character -- a newline
# that would start a forged line, an escape sequence for the auditor's
# terminal -- is refused: the login is denied as "cannot decide", the daemon
# says which item, and nothing is used up. A value without one is journaled
# as given.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

totp_setup
totp_daemon_start
totp_stack phi-auth "auth required $PHI_BUILD_DIR/pam_phi/pam_phi.so"
# libpam logs when a stack has no "other"; keep pam_driver's journal quiet.
totp_stack other "auth required pam_deny.so" "account required pam_deny.so" \
    "password required pam_deny.so" "session required pam_deny.so"
totp_enroll alice

step=$(totp_fresh_step alice)
code=$(totp_code alice "$step")
forged=$'203.0.113.7)\nphiaccessd: TOTP accepted for root (sshd'
start=$(phi_journal_cursor)
for item in rhost tty; do
    cur=$(phi_journal_cursor)
    value=$forged
    [ "$item" = tty ] && value=$'pts/1\e[2J'
    phi_assert_eq "$(totp_pam phi-auth alice "--$item" "$value" --answer "$code")" PAM_AUTHINFO_UNAVAIL \
        "a right code with a control character in PAM_${item^^}: denied"
    ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PRIORITY=4)
    phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" \
        "refusing a login request for alice: its PAM_${item^^} holds a control character" "the daemon says which item"
    ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=pam_driver)
    phi_assert_contains "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" \
        "phiaccessd could not decide: PAM_${item^^} holds a control character" "pam_phi logs why it denied"
done
phi_assert_eq "$(phi_journal_json --after "$start" SYSLOG_IDENTIFIER=phiaccessd | jq -r .MESSAGE |
    grep -c 'accepted for root' || true)" 0 "no message of the daemon carries the forged line"

cur=$(phi_journal_cursor)
phi_assert_eq "$(totp_pam phi-auth alice --rhost 203.0.113.7 --tty pts/1 --answer "$code")" PAM_SUCCESS \
    "the same code with plain items passes: the refused requests used nothing up"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok PHI_USER=alice)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_RHOST)" 203.0.113.7 "auth_ok carries PHI_RHOST"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_TTY)" pts/1 "and PHI_TTY"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" "TOTP accepted for alice (phi-auth from 203.0.113.7)" \
    "and a message naming the host"

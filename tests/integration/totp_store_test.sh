#!/usr/bin/env bash
# TOTP when the store cannot write (its file system full): every login is
# denied as "cannot decide" -- never accepted, and never counted as a wrong
# code -- the daemon keeps serving, and the failed round changed nothing: once
# there is room again, the very code that was refused passes, and the
# wrong-code attempts made meanwhile left no failure count behind.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

# The daemon's directory (store, key, configuration) on a file system of its
# own that the test can fill: a small tmpfs in this test's mount namespace.
mkdir -p "$PHI_TMP/phi"
mount -t tmpfs -o size=8m,mode=0755 phi-store "$PHI_TMP/phi"
TOTP_EXTRA_CONFIG=$'max_failures = 3\nfailure_window = 10m\nlockout = 10m'
totp_setup
totp_daemon_start
totp_stack phi-auth "auth required $PHI_BUILD_DIR/pam_phi/pam_phi.so"
# libpam logs when a stack has no "other"; keep pam_driver's journal quiet.
totp_stack other "auth required pam_deny.so" "account required pam_deny.so" \
    "password required pam_deny.so" "session required pam_deny.so"
totp_enroll alice
totp_enroll bob

# A login's round appends to the store's write-ahead log, which needs new
# space: with the file system full, the commit fails.
cur=$(phi_journal_cursor)
dd if=/dev/zero of="$TOTP_DIR/filler" bs=64k status=none 2>/dev/null || true
phi_assert_eq "$(df --output=avail "$TOTP_DIR" | tail -n 1 | tr -d ' ')" 0 "the store's file system is full"
step=$(totp_fresh_step alice)
code=$(totp_code alice "$step")
phi_assert_eq "$(totp_pam phi-auth alice --answer "$code")" PAM_AUTHINFO_UNAVAIL \
    "with the store full, a right code is not accepted: PAM_AUTHINFO_UNAVAIL"
for _ in 1 2 3; do
    phi_assert_eq "$(totp_pam phi-auth bob --answer 000000)" PAM_AUTHINFO_UNAVAIL \
        "with the store full, a wrong code is not judged either"
done
ev=$(phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PRIORITY=3 | head -n 1)
phi_assert_contains "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" \
    "requests failed and was rolled back: No space left on device" "the daemon journals the failed round"
ev=$(phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=pam_driver | head -n 1)
phi_assert_contains "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" \
    "phiaccessd could not decide: the verification store failed; try again" "pam_phi journals why it denied"
phi_check_fails "no auth_ok while the store was full" phi_journal_wait --timeout 1 --after "$cur" \
    SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok
phi_check "the daemon still answers" "$PHI_BUILD_DIR/phiaccessd/phictl" status

rm -f "$TOTP_DIR/filler"
cur=$(phi_journal_cursor)
phi_assert_eq "$(totp_pam phi-auth alice --answer "$code")" PAM_SUCCESS \
    "with room again, the same code passes: the failed round did not use it up"
TOTP_LAST[alice]=$step
ev=$(phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok PHI_USER=alice)
phi_assert_eq "$(printf '%s\n' "$ev" | head -n 1 | phi_json_field PHI_SERVICE)" phi-auth "its auth_ok is journaled"
# max_failures is 3: had the three refused attempts been counted, bob would
# be locked out now.
step=$(totp_fresh_step bob)
phi_assert_eq "$(totp_pam phi-auth bob --answer "$(totp_code bob "$step")")" PAM_SUCCESS \
    "bob is not locked out: the attempts made while the store was full counted nothing"
TOTP_LAST[bob]=$step

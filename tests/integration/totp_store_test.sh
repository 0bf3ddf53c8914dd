#!/usr/bin/env bash
# TOTP when the store cannot write (its file system full): every login is
# denied as "cannot decide" -- never accepted, and never counted as a wrong
# code -- the daemon keeps serving, and the failed round changed nothing: once
# there is room again, the very code that was refused passes, and the
# wrong-code attempts made meanwhile left no failure count behind. Also: an
# sqlite3 shell reading the store while the daemon runs costs no durability,
# and a sealed seed copied into another user's row does not open there.
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
for u in alice bob carol dave erin; do
    totp_enroll "$u"
done

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
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PRIORITY=3)
phi_assert_contains "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" \
    "requests failed and was rolled back: No space left on device" "the daemon journals the failed round"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=pam_driver)
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
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok PHI_USER=alice)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_SERVICE)" phi-auth "its auth_ok is journaled"
# max_failures is 3: had the three refused attempts been counted, bob would
# be locked out now.
step=$(totp_fresh_step bob)
phi_assert_eq "$(totp_pam phi-auth bob --answer "$(totp_code bob "$step")")" PAM_SUCCESS \
    "bob is not locked out: the attempts made while the store was full counted nothing"
TOTP_LAST[bob]=$step

# ---------------------------------------------------------------- another reader
# An admin looks into the store with the sqlite3 shell while the daemon runs.
# The shell must see that the daemon has the database open: had the daemon
# lost its file locks, the shell would take itself for the last user on
# closing, and delete the write-ahead log the daemon still writes to: later
# commits would live only in a deleted file, lost if the daemon then crashed.
# The login after the shell's visit is the proof: its watermark must outlive
# a crash of the daemon (SIGKILL).
db=$TOTP_DIR/phi.db
phi_assert_eq "$(sqlite3 "$db" "SELECT count(*) FROM totp_tokens WHERE state = 2")" 5 "the shell reads the store"
phi_check "the daemon's write-ahead log is still there after the shell closed" test -e "$db-wal"
step=$(totp_fresh_step carol)
code=$(totp_code carol "$step")
phi_assert_eq "$(totp_pam phi-auth carol --answer "$code")" PAM_SUCCESS "a login after the shell's visit"
TOTP_LAST[carol]=$step
phi_stop_pid --kill "$TOTP_DAEMON_PID"
# A killed daemon leaves its sockets; the restart is awaited by their return.
rm -f "$TOTP_SOCKET" /run/phiaccessd/pam
totp_daemon_start
phi_assert_eq "$(totp_pam phi-auth carol --answer "$code")" PAM_AUTH_ERR \
    "after a crash and a restart that code is still used up: the commit after the shell's visit was durable"

# ---------------------------------------------------------------- a moved seed
# Someone who can write the store copies erin's sealed seed into dave's row,
# to log in as dave with erin's phone. The seal's additional data is the user
# name, so the seed does not open under dave's name: the login is denied as
# "cannot decide", and journaled at error priority, since it means a replaced
# key or an altered row.
saved=$(sqlite3 "$db" "SELECT hex(nonce) || ' ' || hex(sealed) FROM totp_tokens WHERE user = 'dave' AND state = 2")
[ -n "$saved" ] || phi_die "dave has no active token row"
sqlite3 "$db" "UPDATE totp_tokens SET
    nonce = (SELECT nonce FROM totp_tokens WHERE user = 'erin' AND state = 2),
    sealed = (SELECT sealed FROM totp_tokens WHERE user = 'erin' AND state = 2)
    WHERE user = 'dave' AND state = 2"
cur=$(phi_journal_cursor)
step=$(totp_fresh_step dave)
phi_assert_eq "$(totp_pam phi-auth dave --answer "$(totp_code erin "$step")")" PAM_AUTHINFO_UNAVAIL \
    "dave's row holding erin's sealed seed: erin's code does not log in as dave"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_fail PHI_USER=dave)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_REASON)" unseal_failed "journaled as unseal_failed"
phi_assert_eq "$(printf '%s\n' "$ev" | sed -n 1p | phi_json_field PRIORITY)" 3 "at error priority"
read -r nonce sealed <<<"$saved"
sqlite3 "$db" "UPDATE totp_tokens SET nonce = x'$nonce', sealed = x'$sealed' WHERE user = 'dave' AND state = 2"
phi_assert_eq "$(totp_pam phi-auth dave --answer "$(totp_code dave "$step")")" PAM_SUCCESS \
    "his own row back, dave's code passes"
TOTP_LAST[dave]=$step

#!/usr/bin/env bash
# phictl against the real daemon, as the users who run it: `user show` reports
# the token's real state (none, a ticket outstanding, pending, active, locked
# out until when) in the table and in --json; --json output has typed numbers
# and booleans; `totp issue` refuses names nobody has, root and system
# accounts; `totp enroll` at the end of its input exits 1, not 2; tickets,
# resets and refusals during a lockout are journal events of their own; and a
# request socket in a directory others cannot search is reported at start.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

TOTP_EXTRA_CONFIG=$'max_failures = 3\nfailure_window = 10m\nlockout = 10m'
totp_setup
# A system account of the local files: below min_uid (1000 by default).
echo "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin" >>"$TOTP_DIR/passwd"
totp_daemon_start
totp_stack phi-auth "auth required $PHI_BUILD_DIR/pam_phi/pam_phi.so"
totp_stack other "auth required pam_deny.so" "account required pam_deny.so" \
    "password required pam_deny.so" "session required pam_deny.so"

show() { # USER [ARGS]: phictl --json user show NAME, asked by USER
    local who=$1
    shift
    totp_phictl_as "$who" --json user show "$@"
}
show_field() { # NAME FIELD: one field of the JSON, asked by NAME itself
    show "$1" "$1" | jq -r --arg f "$2" '.[$f]'
}

# ------------------------------------------------------------ user show: none
json=$(show bob bob)
phi_assert_eq "$(jq -r .token <<<"$json")" none "bob, never enrolled: token none"
phi_assert_eq "$(jq -r '.ticket_expires, .locked_until' <<<"$json" | tr '\n' ' ')" "null null " \
    "no ticket, no lockout (null in JSON)"
phi_assert_eq "$(jq -r .source <<<"$json")" local "a local account is shown, from the passwd file"
phi_assert_eq "$(jq -r '.uid|type' <<<"$json")" number "uid is a JSON number"
table=$(totp_phictl_as bob user show bob)
phi_assert_match "$table" $'token +none\nlocked +no\nticket +none' "the table says none, no lockout, no ticket"
rc=0
out=$(totp_phictl_as bob user show nosuch 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "user show of a name nobody has: exit 1"
phi_assert_contains "$out" "no user named 'nosuch' in the directory or in $TOTP_DIR/passwd" "and says where it looked"

# ------------------------------------------------- a ticket, and its journal event
cur=$(phi_journal_cursor)
issued=$(totp_phictl_as root --json totp issue bob --expires 2h)
expires=$(jq -r .ticket_expires <<<"$issued")
phi_assert_match "$expires" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "totp issue says until when ($expires)"
phi_assert_eq "$(show_field bob ticket_expires)" "$expires" "user show: the outstanding ticket, until the same time"
phi_assert_eq "$(show_field bob token)" none "with only a ticket, still no token"
phi_assert_match "$(totp_phictl_as bob user show bob)" "ticket +unused, valid until $expires" "the table says so too"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=ticket_issued)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_USER)" bob "ticket_issued: PHI_USER"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_ACTOR)" root "ticket_issued: PHI_ACTOR, who issued it"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_EXPIRES)" "$expires" "ticket_issued: PHI_EXPIRES"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field MESSAGE_ID)" \
    "$(awk '/^-- /{id=$2} /^Subject: An enrolment ticket was issued/{print id}' "$PHI_SOURCE_DIR/phiaccessd/phi.catalog")" \
    "ticket_issued: the catalog's MESSAGE_ID"

# ------------------------------------------- enroll without a terminal: pending
rc=0
out=$(totp_phictl_as bob totp enroll </dev/null 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "totp enroll whose input ends before a code: exit 1 (not 2, a usage error)"
phi_assert_contains "$out" "no code was given (end of input); the token stays inactive" "and says why"
phi_assert_eq "$(show_field bob token)" pending "user show: the new token is pending"
phi_assert_eq "$(show_field bob ticket_expires)" "$expires" "and the ticket is still unused"

# ------------------------------------------------------------- active, then locked
totp_enroll alice
json=$(show alice alice)
phi_assert_eq "$(jq -r .token <<<"$json")" active "alice, enrolled: token active"
phi_assert_eq "$(jq -r .ticket_expires <<<"$json")" null "the ticket was used up by the activation"
phi_assert_eq "$(show bob alice | jq -r .token)" active "anyone may ask: bob sees alice's token state"
cur=$(phi_journal_cursor)
for i in 1 2 3; do
    phi_assert_eq "$(totp_pam phi-auth alice --answer "$(printf '%06d' $((i * 111111 % 1000000)))")" PAM_AUTH_ERR \
        "wrong code $i of 3"
done
lock=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=lockout PHI_USER=alice)
until=$(printf '%s\n' "$lock" | phi_json_field PHI_EXPIRES)
json=$(show alice alice)
phi_assert_eq "$(jq -r .token <<<"$json")" active "locked out, the token is still active"
phi_assert_eq "$(jq -r .locked_until <<<"$json")" "$until" "user show: locked until the lockout's end ($until)"
phi_assert_match "$(totp_phictl_as alice user show alice)" "locked +until $until" "the table says so too"

# The right code during the lockout is refused unchecked, and journaled so.
cur=$(phi_journal_cursor)
step=$(totp_fresh_step alice)
phi_assert_eq "$(totp_pam phi-auth alice --answer "$(totp_code alice "$step")")" PAM_AUTH_ERR \
    "locked out: the right code is refused"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_fail PHI_USER=alice)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_REASON)" locked_out "the refusal: PHI_REASON=locked_out"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_EXPIRES)" "$until" "and PHI_EXPIRES, the lockout's end"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" \
    "TOTP refused for alice (phi-auth): locked out until $until after too many failed codes" \
    "its message says it was the lockout, not a wrong code"

# ------------------------------------------------------- reset: token_reset event
cur=$(phi_journal_cursor)
reset=$(totp_phictl_as root --json totp reset alice)
phi_assert_eq "$(jq -r '.removed|type' <<<"$reset")" boolean "totp reset --json: removed is a JSON boolean"
phi_assert_eq "$(jq -r .removed <<<"$reset")" true "and true: there was a token"
phi_assert_eq "$(show_field alice token)" none "after the reset: token none"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=token_reset PHI_USER=alice)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_ACTOR)" root "token_reset: PHI_ACTOR"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_SERVICE)" phictl "token_reset: PHI_SERVICE=phictl"

# ------------------------------------------------- totp issue: who may have a ticket
for who in nosuch root daemon; do
    rc=0
    out=$(totp_phictl_as root totp issue "$who" 2>&1) || rc=$?
    phi_assert_eq "$rc" 1 "totp issue $who: refused, exit 1"
    case $who in
        nosuch) phi_assert_contains "$out" "no user named 'nosuch' in the directory or in $TOTP_DIR/passwd" \
            "a name nobody has: said so" ;;
        root) phi_assert_contains "$out" "'root' is a system account (uid 0, below [ldap] min_uid 1000)" \
            "root: a system account" ;;
        daemon) phi_assert_contains "$out" "'daemon' is a system account (uid 1, below [ldap] min_uid 1000)" \
            "a local account below min_uid: a system account" ;;
    esac
done
phi_assert_eq "$(show root root | jq -r '.token, .ticket_expires' | tr '\n' ' ')" "none null " \
    "no ticket was made for root"

# ---------------------------------------------------------- --json status: types
json=$(totp_phictl_as bob --json status)
for k in users groups uptime_seconds requests requests_refused totp_rounds totp_requests snapshot_generation; do
    phi_assert_eq "$(jq -r --arg k "$k" '.[$k]|type' <<<"$json")" number "status --json: $k is a JSON number"
done
for k in outage sync_cookie; do
    phi_assert_eq "$(jq -r --arg k "$k" '.[$k]|type' <<<"$json")" boolean "status --json: $k is a JSON boolean"
done
phi_assert_eq "$(jq -r .sync_age_seconds <<<"$json")" null "never synced: sync_age_seconds is null"
phi_assert_eq "$(jq -r '.daemon|type' <<<"$json")" string "text stays a string"
# The directory (nothing on port 3999) is unreachable: an outage.
phi_assert_eq "$(jq -r .outage <<<"$json")" true "outage: true, the directory is unreachable"
phi_assert_match "$(totp_phictl_as bob status)" $'\noutage +yes\n' "the table still says yes or no"

# ------------------------------------- a request socket others cannot reach
# socket_warnings: the daemon's warnings about its request socket since $cur,
# once its "ready" line (logged after the check) is in.
daemon_ready() {
    phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PRIORITY=6 | jq -r .MESSAGE | grep -q ' ready on '
}
socket_warnings() {
    phi_wait_for --timeout 10 --what "phiaccessd's ready line" daemon_ready || phi_die "phiaccessd did not say it is ready"
    phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PRIORITY=4 | jq -r .MESSAGE |
        grep 'request socket' || true
}
totp_daemon_stop
chmod 0700 /run/phiaccessd
cur=$(phi_journal_cursor)
totp_daemon_start
phi_assert_eq "$(socket_warnings)" \
    "users other than root cannot reach the request socket: the directory /run/phiaccessd is not searchable by others (mode 0700); fix: chmod o+x /run/phiaccessd (for /run/phiaccessd: DirectoryMode=0755 in phiaccessd.socket and RuntimeDirectoryMode=0755 in phiaccessd.service); until then phictl fails for them with 'Permission denied' (exit 3)" \
    "at start the daemon says the socket's directory is closed to others, and the fix"
rc=0
out=$(totp_phictl_as bob status 2>&1) || rc=$?
phi_assert_eq "$rc" 3 "as the warning says: phictl as bob cannot connect (exit 3)"
phi_assert_contains "$out" "Permission denied" "with Permission denied"
totp_daemon_stop
chmod 0755 /run/phiaccessd
cur=$(phi_journal_cursor)
totp_daemon_start
phi_check "with the directory open, phictl as bob works" totp_phictl_as bob status
phi_assert_eq "$(socket_warnings)" "" "and the daemon warned of nothing"

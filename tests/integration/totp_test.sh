#!/usr/bin/env bash
# TOTP two-factor through real PAM stacks (pam_start_confdir via pam_driver)
# against the real phiaccessd, with codes computed by oathtool: enrolment on a
# pty, right/wrong/replayed/out-of-window codes, unknown and unenrolled users,
# combined and openvpn modes, 20 racing logins with one code, user and host
# lockout, daemon down, replay state across a restart, and no seed in the store
# or the journal. Every outcome is checked in the journal too.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

TOTP_EXTRA_CONFIG=$'max_failures = 5\nhost_max_failures = 8\nfailure_window = 10m\nlockout = 10m'
totp_setup
totp_daemon_start
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so

# The module after pam_phi in the one-field stacks: it passes only when it is
# handed exactly the password part as PAM_AUTHTOK.
cat >"$TOTP_DIR/check-password" <<'SH'
#!/bin/sh
IFS= read -r pw || true
[ "$pw" = "s3cret pass" ]
SH
chmod 0755 "$TOTP_DIR/check-password"
totp_stack phi-auth "auth required $PAM_PHI"
totp_stack phi-combined "auth requisite $PAM_PHI combined" \
    "auth required pam_exec.so expose_authtok quiet $TOTP_DIR/check-password"
totp_stack phi-openvpn "auth requisite $PAM_PHI openvpn" \
    "auth required pam_exec.so expose_authtok quiet $TOTP_DIR/check-password"

event() { # CURSOR EVENT USER: the daemon's journal entries for it (waits up to 5 s)
    phi_journal_wait --timeout 5 --after "$1" SYSLOG_IDENTIFIER=phiaccessd "PHI_EVENT=$2" "PHI_USER=$3"
}
field() { # JSON FIELD
    printf '%s\n' "$1" | sed -n 1p | phi_json_field "$2"
}

# ---------------------------------------------------------------- enrolment
cur=$(phi_journal_cursor)
totp_enroll alice 1
out=$(cat "$TOTP_ENROLL_OUT")
phi_assert_contains "$out" "otpauth://totp/phi%20test:alice?secret=" "enrolment prints the otpauth URI"
phi_assert_contains "$out" "&algorithm=SHA1&digits=6&period=30" "URI names algorithm, digits and period"
qr_lines=$(printf '%s\n' "$out" | tr -d '\r' | grep -c -e '▀' -e '▄' || true)
phi_assert_match "$qr_lines" '^(1[1-9]|[2-9][0-9])$' "a QR code of half-block lines is drawn ($qr_lines lines)"
uri=$(printf '%s\n' "$out" | tr -d '\r' | grep -o 'otpauth://[^[:space:]]*' | sed -n 1p)
phi_assert_eq "$(totp_qr_decode "$TOTP_ENROLL_OUT")" "$uri" "the QR code scans (zbarimg) to the URI printed beside it"
phi_assert_contains "$out" "wrong code" "a wrong code at enrolment is refused"
phi_assert_contains "$out" "Token active" "the right code activates the token"
ev=$(event "$cur" enrolled alice)
phi_assert_eq "$(field "$ev" PRIORITY)" 5 "enrolled is journaled at notice"
ev=$(event "$cur" auth_fail alice)
phi_assert_eq "$(field "$ev" PHI_REASON)" wrong_code "the wrong enrolment code is journaled as auth_fail"

# A token is active only after a correct code: grace gets three wrong tries.
totp_phictl_as root totp issue grace >/dev/null
totp_phictl_enroll_expect grace 3 >"$PHI_TMP/enroll.grace.out" 2>&1 ||
    phi_fail "enrolment with only wrong codes runs to its end" "$(cat "$PHI_TMP/enroll.grace.out")"
phi_assert_contains "$(cat "$PHI_TMP/enroll.grace.out")" "not activated" "phictl says the token was not activated"
step=$(totp_now_step)
phi_assert_eq "$(totp_pam phi-auth grace --answer "$(totp_code grace "$step")")" PAM_AUTH_ERR \
    "a pending token does not log in, even with its right code"
cur=$(phi_journal_cursor)
totp_enroll grace
phi_check "the second enrolment (ticket still valid) activates" grep -q "Token active" "$TOTP_ENROLL_OUT"
step=$(totp_fresh_step grace)
phi_assert_eq "$(totp_pam phi-auth grace --answer "$(totp_code grace "$step")")" PAM_SUCCESS \
    "after activation the token logs in"
TOTP_LAST[grace]=$step
phi_check_fails "a ticket is good for one activation only" totp_phictl_as grace totp enroll </dev/null

# ---------------------------------------------------------------- codes
cur=$(phi_journal_cursor)
step=$(totp_fresh_step alice)
code=$(totp_code alice "$step")
phi_assert_eq "$(totp_pam phi-auth alice --rhost 192.0.2.1 --tty ssh --answer "$code")" PAM_SUCCESS \
    "right code: PAM_SUCCESS"
TOTP_LAST[alice]=$step
ev=$(event "$cur" auth_ok alice)
phi_assert_eq "$(field "$ev" PHI_SERVICE)" phi-auth "auth_ok names the PAM service"
phi_assert_eq "$(field "$ev" PHI_RHOST)" 192.0.2.1 "auth_ok names the remote host"
phi_assert_eq "$(field "$ev" PHI_TTY)" ssh "auth_ok names the tty"
phi_assert_eq "$(field "$ev" PRIORITY)" 6 "auth_ok is journaled at info"

cur=$(phi_journal_cursor)
phi_assert_eq "$(totp_pam phi-auth alice --rhost 192.0.2.1 --answer "$code")" PAM_AUTH_ERR \
    "the same code a second time: PAM_AUTH_ERR"
ev=$(event "$cur" totp_replay alice)
phi_assert_eq "$(field "$ev" PRIORITY)" 4 "totp_replay is journaled at warning"
cur=$(phi_journal_cursor)
phi_assert_eq "$(totp_pam phi-auth alice --rhost 192.0.2.1 --answer "$(totp_code alice $((step - 1)))")" PAM_AUTH_ERR \
    "the code before the accepted one (still inside the window): PAM_AUTH_ERR"
event "$cur" totp_replay alice >/dev/null
phi_pass "an older code is journaled as totp_replay"

cur=$(phi_journal_cursor)
wrong=$(totp_code alice $((step + 7)))
phi_assert_eq "$(totp_pam phi-auth alice --rhost 192.0.2.1 --answer "$wrong")" PAM_AUTH_ERR "wrong code: PAM_AUTH_ERR"
wrong_ev=$(event "$cur" auth_fail alice)
phi_assert_eq "$(field "$wrong_ev" PHI_REASON)" wrong_code "auth_fail says wrong_code"
phi_assert_eq "$(field "$wrong_ev" PRIORITY)" 4 "auth_fail is journaled at warning"
now=$(totp_now_step)
for off in -3 3; do
    cur=$(phi_journal_cursor)
    phi_assert_eq "$(totp_pam phi-auth alice --rhost 192.0.2.1 --answer "$(totp_code alice $((now + off)))")" PAM_AUTH_ERR \
        "a code $off steps from now (outside the +-1 window): PAM_AUTH_ERR"
    event "$cur" auth_fail alice >/dev/null
    phi_pass "outside the window is journaled as auth_fail"
done

# Unknown and unenrolled users: the same answer and the same journal shape as
# a wrong code; only PHI_REASON (for admins) differs.
cur=$(phi_journal_cursor)
phi_assert_eq "$(totp_pam phi-auth nosuchuser --rhost 192.0.2.2 --answer 123456)" PAM_AUTH_ERR \
    "unknown user: PAM_AUTH_ERR, like a wrong code"
unknown_ev=$(event "$cur" auth_fail nosuchuser)
phi_assert_eq "$(field "$unknown_ev" PHI_REASON)" no_token "auth_fail for an unknown user says no_token"
phi_assert_eq "$(field "$unknown_ev" MESSAGE_ID)" "$(field "$wrong_ev" MESSAGE_ID)" "same MESSAGE_ID as a wrong code"
phi_assert_eq "$(field "$unknown_ev" PRIORITY)" "$(field "$wrong_ev" PRIORITY)" "same priority as a wrong code"
phi_assert_eq "$(field "$unknown_ev" MESSAGE | sed 's/nosuchuser/USER/; s/192.0.2.2/HOST/')" \
    "$(field "$wrong_ev" MESSAGE | sed 's/alice/USER/; s/192.0.2.1/HOST/')" "same message as a wrong code"
cur=$(phi_journal_cursor)
phi_assert_eq "$(totp_pam phi-auth bob --rhost 192.0.2.3 --answer 123456)" PAM_AUTH_ERR "unenrolled user: PAM_AUTH_ERR"
phi_assert_eq "$(field "$(event "$cur" auth_fail bob)" PHI_REASON)" no_token "auth_fail for an unenrolled user"

# ---------------------------------------------------------------- one-field modes
totp_enroll carol
step=$(totp_fresh_step carol)
phi_assert_eq "$(totp_pam phi-combined carol --answer "s3cret pass$(totp_code carol "$step")")" PAM_SUCCESS \
    "combined: password+code passes, and the next module gets the password alone"
TOTP_LAST[carol]=$step
phi_assert_eq "$(totp_pam phi-combined carol --answer "s3cret pass$(totp_code carol $((step + 5)))")" PAM_AUTH_ERR \
    "combined: a wrong code fails"
phi_assert_eq "$(totp_pam phi-combined carol --answer "s3cret pass")" PAM_AUTH_ERR "combined: no code fails"
step=$(totp_fresh_step carol)
b64pw=$(printf '%s' "s3cret pass" | base64 -w0)
scrv1="SCRV1:$b64pw:$(printf '%s' "$(totp_code carol "$step")" | base64 -w0)"
phi_assert_eq "$(totp_pam phi-openvpn carol --answer "$scrv1")" PAM_SUCCESS "openvpn: SCRV1 response passes"
TOTP_LAST[carol]=$step
phi_assert_eq "$(totp_pam phi-openvpn carol --answer "$scrv1")" PAM_AUTH_ERR "openvpn: the same response again fails"
phi_assert_eq "$(totp_pam phi-openvpn carol --answer "SCRV1:$b64pw:$(printf 999999 | base64 -w0)")" PAM_AUTH_ERR \
    "openvpn: a wrong code fails"
phi_assert_eq "$(totp_pam phi-openvpn carol --answer "s3cret pass123456")" PAM_AUTH_ERR "openvpn: a plain password fails"

# ---------------------------------------------------------------- racing logins
totp_enroll dave
step=$(totp_fresh_step dave)
code=$(totp_code dave "$step")
cur=$(phi_journal_cursor)
status_of() { # KEY: one value of `phictl status`
    "$PHI_BUILD_DIR/phiaccessd/phictl" --json status | jq -r --arg k "$1" '.[$k]'
}
rounds0=$(status_of totp_rounds)
requests0=$(status_of totp_requests)
racers=()
for i in $(seq 1 20); do
    totp_pam phi-auth dave --answer "$code" >"$PHI_TMP/race.$i" &
    racers+=($!)
done
wait "${racers[@]}"
results=$(cat "$PHI_TMP"/race.* | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')
phi_assert_eq "$(cat "$PHI_TMP"/race.* | grep -c '^PAM_SUCCESS$' || true)" 1 \
    "20 parallel logins with one code: exactly one succeeds ($results)"
phi_assert_eq "$(cat "$PHI_TMP"/race.* | grep -c '^PAM_AUTH_ERR$' || true)" 19 "the other 19 get PAM_AUTH_ERR"
phi_assert_eq "$(event "$cur" auth_ok dave | wc -l)" 1 "exactly one auth_ok in the journal"
rounds=$(($(status_of totp_rounds) - rounds0))
phi_assert_eq "$(($(status_of totp_requests) - requests0))" 20 "status counts the 20 verifications"
phi_assert_match "$rounds" '^([1-9]|1[0-9]|20)$' "status counts 1 to 20 durable rounds for them ($rounds)"

# ---------------------------------------------------------------- lockout
totp_enroll erin
cur=$(phi_journal_cursor)
for i in 1 2 3 4 5; do
    phi_assert_eq "$(totp_pam phi-auth erin --rhost 192.0.2.5 --answer "$(printf '%06d' $((i * 111111 % 1000000)))")" \
        PAM_AUTH_ERR "wrong code $i of 5"
done
ev=$(event "$cur" lockout erin)
phi_assert_eq "$(field "$ev" PRIORITY)" 1 "lockout is journaled at alert"
phi_assert_eq "$(field "$ev" PHI_REASON)" user_failures "lockout names the user's failures"
phi_assert_ne "$(field "$ev" PHI_EXPIRES)" "" "lockout says until when"
cur=$(phi_journal_cursor)
step=$(totp_fresh_step erin)
phi_assert_eq "$(totp_pam phi-auth erin --rhost 192.0.2.5 --answer "$(totp_code erin "$step")")" PAM_AUTH_ERR \
    "locked out: even the right code fails"
phi_assert_eq "$(field "$(event "$cur" auth_fail erin)" PHI_REASON)" locked_out "auth_fail says locked_out"

# Per host: wrong codes for many names from one host lock the host, for everyone.
totp_enroll heidi
cur=$(phi_journal_cursor)
for i in 1 2 3 4 5 6 7 8; do
    totp_pam phi-auth "spray$i" --rhost 198.51.100.9 --answer 000000 >/dev/null
done
ev=$(phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=lockout PHI_RHOST=198.51.100.9)
phi_assert_eq "$(field "$ev" PHI_REASON)" host_failures "lockout of the host after 8 failures from it"
step=$(totp_fresh_step heidi)
phi_assert_eq "$(totp_pam phi-auth heidi --rhost 198.51.100.9 --answer "$(totp_code heidi "$step")")" PAM_AUTH_ERR \
    "a locked-out host is refused even a right code"
phi_assert_eq "$(totp_pam phi-auth heidi --rhost 198.51.100.10 --answer "$(totp_code heidi "$step")")" PAM_SUCCESS \
    "the same code from another host passes (it was not used up by the refusal)"
TOTP_LAST[heidi]=$step

# ---------------------------------------------------------------- the PAM socket
# Codes are verified on a socket of their own, root's alone; the request socket
# (every user's) refuses AUTH, and filling it does not hold up a login.
PAM_SOCKET=/run/phiaccessd/pam
phi_assert_eq "$(stat -c '%a %U %F' "$PAM_SOCKET")" "600 root socket" "the PAM socket is root's alone (0600)"
rc=0; out=$(totp_phictl_as bob --socket "$PAM_SOCKET" status 2>&1) || rc=$?
phi_assert_eq "$rc" 3 "an unprivileged user cannot even connect to it"
chmod 0666 "$PAM_SOCKET"
rc=0; out=$(totp_phictl_as bob --socket "$PAM_SOCKET" status 2>&1) || rc=$?
chmod 0600 "$PAM_SOCKET"
phi_assert_contains "$out" "only root" "with its mode loosened, the daemon still refuses a non-root caller"
totp_enroll frank
totp_enroll judy
cur=$(phi_journal_cursor)
totp_stack phi-mainsock "auth required $PAM_PHI socket=$TOTP_SOCKET"
step=$(totp_fresh_step frank)
phi_assert_eq "$(totp_pam phi-mainsock frank --answer "$(totp_code frank "$step")")" PAM_AUTHINFO_UNAVAIL \
    "pam_phi pointed at the request socket is denied"
ev=$(phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=pam_driver)
phi_assert_contains "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" "verified on the PAM socket" \
    "and pam_phi logs where codes are verified"
phi_assert_eq "$(totp_pam phi-auth frank --answer "$(totp_code frank "$step")")" PAM_SUCCESS \
    "the same code then passes on the PAM socket (the request socket did not use it up)"
TOTP_LAST[frank]=$step
# pam_phi and phictl trust only a socket served by root: a user who could put a
# socket where socket= points (a careless path) could otherwise answer OK to
# any code. bob serves exactly that.
imp=$PHI_TMP/impostor
mkdir -p "$imp"
chown "${TOTP_UID[bob]}" "$imp"
totp_stack phi-impostor "auth required $PAM_PHI socket=$imp/socket"
phi_spawn impostor setpriv --reuid="${TOTP_UID[bob]}" --regid="${TOTP_UID[bob]}" --clear-groups -- \
    "$PHI_BUILD_DIR/tests/tools/phi-impostor" "$imp/socket"
imp_pid=$PHI_LAST_PID
phi_wait_for --timeout 10 --what "bob's impostor" grep -q listening "$PHI_TMP/impostor.log" ||
    phi_fail "phi-impostor did not start" "$(cat "$PHI_TMP/impostor.log")"
cur=$(phi_journal_cursor)
phi_assert_eq "$(totp_pam phi-impostor judy --answer 000000)" PAM_AUTHINFO_UNAVAIL \
    "a wrong code against bob's socket that answers OK to everything: denied"
ev=$(phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=pam_driver)
phi_assert_contains "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" \
    "cannot reach phiaccessd at $imp/socket: the socket is not served by root; not trusting it" "pam_phi says why"
rc=0; out=$("$PHI_BUILD_DIR/phiaccessd/phictl" --socket "$imp/socket" status 2>&1) || rc=$?
phi_assert_eq "$rc" 3 "phictl does not trust it either (exit 3)"
phi_assert_contains "$out" "not served by root" "and says why"
phi_stop_pid "$imp_pid"
# The same program run by root is taken at its word (root is who serves the
# real socket): the denial above came from who served it, not from what it said.
phi_spawn impostor-root "$PHI_BUILD_DIR/tests/tools/phi-impostor" "$imp/socket"
imp_pid=$PHI_LAST_PID
phi_wait_for --timeout 10 --what "root's impostor" grep -q listening "$PHI_TMP/impostor-root.log" ||
    phi_fail "phi-impostor did not start as root" "$(cat "$PHI_TMP/impostor-root.log")"
phi_assert_eq "$(totp_pam phi-impostor judy --answer 000000)" PAM_SUCCESS \
    "served by root, the impostor's OK would be taken"
phi_stop_pid "$imp_pid"
# bob tries to fill the request socket: he keeps 32 connections (each new one
# past them closes his oldest idle one), so root is still served
# (integration.server_limits checks the rest of the sharing).
phi_spawn sock-hold setpriv --reuid="${TOTP_UID[bob]}" --regid="${TOTP_UID[bob]}" --clear-groups -- \
    "$PHI_BUILD_DIR/tests/tools/phi-sock-hold" "$TOTP_SOCKET" 600
hold_pid=$PHI_LAST_PID
phi_wait_for --timeout 10 --what "600 connections" grep -q "held 600" "$PHI_TMP/sock-hold.log" ||
    phi_fail "phi-sock-hold did not connect" "$(cat "$PHI_TMP/sock-hold.log")"
phi_check "with bob holding 600 connections, root's phictl status answers" \
    timeout 10 "$PHI_BUILD_DIR/phiaccessd/phictl" status
step=$(totp_fresh_step judy)
phi_assert_eq "$(totp_pam phi-auth judy --answer "$(totp_code judy "$step")")" PAM_SUCCESS \
    "with bob holding 600 connections, a login still passes"
TOTP_LAST[judy]=$step
phi_stop_pid "$hold_pid"
phi_check "once the connections are gone, phictl status answers again" phi_wait_for --timeout 10 \
    "$PHI_BUILD_DIR/phiaccessd/phictl" status

# ---------------------------------------------------------------- daemon down
# A login answered just before the stop is journaled all the same: the journal
# thread writes what the verifier answered before the daemon exits.
cur=$(phi_journal_cursor)
step=$(totp_fresh_step grace)
phi_assert_eq "$(totp_pam phi-auth grace --answer "$(totp_code grace "$step")")" PAM_SUCCESS "a login right before the stop"
TOTP_LAST[grace]=$step
totp_daemon_stop
phi_check "its auth_ok is in the journal after the stop" \
    phi_journal_wait --timeout 2 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok PHI_USER=grace
cur=$(phi_journal_cursor)
step=$(totp_fresh_step heidi)
phi_assert_eq "$(totp_pam phi-auth heidi --answer "$(totp_code heidi "$step")")" PAM_AUTHINFO_UNAVAIL \
    "daemon stopped: PAM_AUTHINFO_UNAVAIL"
ev=$(phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=pam_driver)
phi_assert_contains "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" "pam_phi(phi-auth:auth): cannot reach phiaccessd" \
    "pam_phi journals that the daemon is unreachable"
totp_daemon_start
phi_assert_eq "$(totp_pam phi-auth heidi --answer "$(totp_code heidi "${TOTP_LAST[heidi]}")")" PAM_AUTH_ERR \
    "after a restart the last accepted code is still refused (the watermark was durable)"
phi_assert_eq "$(totp_pam phi-auth heidi --answer "$(totp_code heidi "$step")")" PAM_SUCCESS \
    "after a restart a fresh code passes"
TOTP_LAST[heidi]=$step

# ---------------------------------------------------------------- reload
# A code 3 steps ahead is outside the default window of 1; with window = 3 and
# a SIGHUP it passes, without a restart.
totp_enroll ivan
step=$(($(totp_now_step) + 3))
code=$(totp_code ivan "$step")
phi_assert_eq "$(totp_pam phi-auth ivan --answer "$code")" PAM_AUTH_ERR "window 1: a code 3 steps ahead fails"
printf 'window = 3\n' >>"$TOTP_CONF"
reloads=$(grep -c 'configuration reloaded' "$PHI_TMP/phiaccessd.log" || true)
kill -HUP "$TOTP_DAEMON_PID"
# shellcheck disable=SC2016 # bash -c reads its arguments as $0 and $1
phi_check "the daemon reloads its configuration on SIGHUP" phi_wait_for --timeout 10 \
    bash -c '[ "$(grep -c "configuration reloaded" "$0")" -gt "$1" ]' "$PHI_TMP/phiaccessd.log" "$reloads"
phi_assert_eq "$(totp_pam phi-auth ivan --answer "$code")" PAM_SUCCESS "after the reload (window 3) the same code passes"
TOTP_LAST[ivan]=$step

# ---------------------------------------------------------------- no seed at rest
journalctl --sync
for u in alice carol dave erin grace heidi; do
    secret=$(totp_secret "$u")
    hex=$(printf '%s' "$secret" | base32 -d | od -An -tx1 -v | tr -d ' \n')
    phi_assert_eq "$(cat "$TOTP_DIR"/phi.db* | grep -c -a -- "$secret" || true)" 0 "the store holds no base32 seed of $u"
    phi_assert_eq "$(cat "$TOTP_DIR"/phi.db* | od -An -tx1 -v | tr -d ' \n' | grep -c -- "$hex" || true)" 0 \
        "the store holds no raw seed of $u"
    phi_assert_eq "$(journalctl -o export --no-pager | grep -c -a -- "$secret" || true)" 0 "the journal holds no seed of $u"
    phi_assert_eq "$(grep -r -c -a -l -- "$secret" /run/log/journal 2>/dev/null | wc -l)" 0 "no journal file holds the seed of $u"
done

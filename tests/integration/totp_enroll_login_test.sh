#!/usr/bin/env bash
# Enrolment at login. Someone whose every login asks for a code cannot log in
# to run `phictl totp enroll`; with [totp] enroll_at_login and pam_phi's
# enroll option, a login of a user who holds a valid ticket and has no active
# token is shown a new token (QR code and URI) and let in by its first code.
# Without the ticket, the policy or the option, nothing is offered and the
# login fails as an unenrolled one always did.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

TOTP_EXTRA_CONFIG="enroll_at_login = yes"
totp_setup
totp_daemon_start
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so
totp_stack phi-enrol "auth required $PAM_PHI enroll"
totp_stack phi-auth "auth required $PAM_PHI"
totp_stack phi-vpn "auth required $PAM_PHI enroll combined"
totp_stack other "auth required pam_deny.so" "account required pam_deny.so" \
    "password required pam_deny.so" "session required pam_deny.so"

# What a person does with the QR code: the app's current code. The URI is read
# from the message pam_phi showed (pam_driver hands it over in $PAM_DRIVER_INFO).
# shellcheck disable=SC2016 # expanded by pam_driver's sh
APP_CODE='s=$(printf "%s\n" "$PAM_DRIVER_INFO" | grep -o "secret=[A-Z2-7]*" | sed -n 1p | cut -d= -f2)
step=$(($(date +%s) / 30)); echo "$step" >"$APP_STEP"
[ -n "$s" ] && oathtool --totp -b "$s" -N "@$((step * 30))"'
export APP_STEP=$PHI_TMP/app.step

# login USER SERVICE [pam_driver args]: the PAM result; the conversation in $CONV.
CONV=$PHI_TMP/conversation
login() {
    local user=$1 service=$2
    shift 2
    rm -f "$CONV"
    timeout 20 "$PHI_BUILD_DIR/tests/pam_driver" --confdir "$TOTP_DIR/pam.d" --service "$service" \
        --user "$user" --rhost 198.51.100.4 --tty pts/3 "$@" 2>"$CONV" || true
}

# --- nothing is offered without a ticket, the option or the policy -----------
cur=$(phi_journal_cursor)
phi_assert_eq "$(login dave phi-enrol --answer '')" PAM_AUTH_ERR "no ticket: an empty code is denied"
phi_assert_not_contains "$(cat "$CONV")" otpauth "no ticket: no token is offered"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" PHI_EVENT=auth_fail PHI_USER=dave)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_REASON)" no_token "no ticket: auth_fail no_token"

totp_phictl_as root totp issue dave --expires 1h >/dev/null
cur=$(phi_journal_cursor)
phi_assert_eq "$(login dave phi-auth --answer 123456)" PAM_AUTH_ERR "a ticket, but a stack without 'enroll': denied"
phi_assert_not_contains "$(cat "$CONV")" otpauth "a stack without 'enroll' offers nothing"
phi_assert_eq "$(login dave phi-auth --answer '')" PAM_AUTH_ERR "and an empty code is denied there"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" PHI_EVENT=auth_fail PHI_USER=dave)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_REASON)" no_token "as an unenrolled user: no_token"

phi_assert_eq "$(login dave phi-vpn --answer "secret123456")" PAM_AUTHINFO_UNAVAIL \
    "'enroll' with 'combined' is a broken stack: denied as unavailable"
phi_wait_for --timeout 5 --what "pam_phi's complaint" grep -q \
    "option 'enroll' needs the code prompt" <(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=pam_driver |
        jq -r .MESSAGE) || phi_fail "pam_phi names the bad option combination"

phi_assert_contains "$(totp_phictl_as root totp issue bob --expires 1h)" \
    "or logs in where pam_phi has the enroll option" "phictl totp issue says the ticket also works at a login"

# --- the offer, and wrong first codes -----------------------------------------
cur=$(phi_journal_cursor)
phi_assert_eq "$(login bob phi-enrol --answer '' --answer 000000 --answer 000001 --answer 000002)" PAM_AUTH_ERR \
    "ticket, option and policy: three wrong first codes are denied"
conv=$(cat "$CONV")
phi_assert_contains "$conv" "No verification token is set up for bob yet" "the login is told why it sees a QR code"
phi_assert_contains "$conv" "Wrong code; check the app and try again." "a wrong first code is said to be wrong"
phi_assert_eq "$(grep -c '^prompt-off: Verification code: ' "$CONV")" 4 \
    "one prompt for the login, then three for the new token's first code"
uri1=$(grep -o 'otpauth://totp/[^ ]*' "$CONV" | sed -n 1p)
phi_assert_contains "$uri1" "otpauth://totp/phi%20test:bob?secret=" "the URI names the issuer and bob"
ev=$(phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PRIORITY=5 PHI_USER=bob |
    jq -c 'select(.MESSAGE | startswith("TOTP enrolment offered"))' | sed -n 1p)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" "TOTP enrolment offered to bob at login (phi-enrol from 198.51.100.4), under a valid ticket: a new token waits for its first code" \
    "the daemon logs the offer at notice, with service and host"
phi_assert_eq "$(printf '%s\n' "$ev" | jq -r '[.PHI_SERVICE, .PHI_RHOST, .PHI_TTY, .PHI_EVENT] | @tsv')" \
    "phi-enrol	198.51.100.4	pts/3	" "as part of bob's access history (PHI_USER and the PAM items), not as an event"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" PHI_EVENT=auth_fail PHI_USER=bob PHI_SERVICE=phi-enrol)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_REASON)" wrong_code "a wrong first code: auth_fail wrong_code"
cur=$(phi_journal_cursor)
secret1=$(printf '%s\n' "$uri1" | grep -o 'secret=[A-Z2-7]*' | cut -d= -f2)
phi_assert_eq "$(login bob phi-auth --answer "$(oathtool --totp -b "$secret1")")" PAM_AUTH_ERR \
    "a right code of the offered token does not log in while it is not activated"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" PHI_EVENT=auth_fail PHI_USER=bob)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_REASON)" no_token "an offered token is no token yet"

# --- the offer taken: the QR code scans to the URI, the first code lets in ----
cur=$(phi_journal_cursor)
phi_assert_eq "$(login bob phi-enrol --answer '' --answer-cmd "$APP_CODE")" PAM_SUCCESS \
    "the app's first code activates the token and lets the login in"
uri=$(grep -o 'otpauth://totp/[^ ]*' "$CONV" | sed -n 1p)
phi_assert_ne "$uri" "$uri1" "every offer is a new secret"
sed -n '/^info: /,/^prompt-off/p' "$CONV" | sed 's/^info: //' >"$PHI_TMP/qr.bob"
phi_assert_eq "$(totp_qr_decode "$PHI_TMP/qr.bob")" "$uri" "the QR code shown at login scans to the URI shown"
secret=$(printf '%s\n' "$uri" | grep -o 'secret=[A-Z2-7]*' | cut -d= -f2)
printf '%s\n' "$secret" >"$TOTP_DIR/secret.bob"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" PHI_EVENT=enrolled PHI_USER=bob)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_SERVICE)" phi-enrol "enrolled carries the login's service"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_RHOST)" 198.51.100.4 "and its remote host"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_TTY)" pts/3 "and its terminal"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" \
    "TOTP token of bob activated at login (phi-enrol from 198.51.100.4); the login is let in" \
    "and says the login was let in"
phi_assert_eq "$(phi_journal_json --after "$cur" | grep -c "$secret" || true)" 0 \
    "the journal holds no trace of the seed"
phi_assert_eq "$(grep -c "$secret" "$TOTP_DIR/phi.db" || true)" 0 "nor does the store"

# The activation's step is bob's watermark: its code is used, the next one works.
step=$(cat "$APP_STEP")
TOTP_LAST[bob]=$step
cur=$(phi_journal_cursor)
phi_assert_eq "$(login bob phi-auth --answer "$(totp_code bob "$step")")" PAM_AUTH_ERR \
    "the code that activated the token does not log in again"
phi_journal_wait --timeout 5 --after "$cur" PHI_EVENT=totp_replay PHI_USER=bob >/dev/null ||
    phi_fail "the reuse is journaled as totp_replay"
phi_assert_eq "$(login bob phi-auth --answer "$(totp_code bob "$(totp_fresh_step bob)")")" PAM_SUCCESS \
    "the next code from the app logs in through a stack without 'enroll'"

# The ticket is used up and the token active: the enroll stack offers nothing now.
phi_assert_eq "$(login bob phi-enrol --answer '')" PAM_AUTH_ERR "an enrolled user's empty code is a wrong code"
phi_assert_not_contains "$(cat "$CONV")" otpauth "an enrolled user is offered nothing"

# --- a login that ends after the QR code: the next login's first code activates
# the token it showed (the app has it), with no second offer ---------------------
totp_phictl_as root totp issue erin --expires 1h >/dev/null
phi_assert_eq "$(login erin phi-enrol --answer '')" PAM_AUTH_ERR \
    "a login that gives no code for the new token (the client went away) is denied"
uri=$(grep -o 'otpauth://totp/[^ ]*' "$CONV" | sed -n 1p)
phi_assert_contains "$uri" "phi%20test:erin?secret=" "it was shown erin's new token"
printf '%s\n' "$uri" | grep -o 'secret=[A-Z2-7]*' | cut -d= -f2 >"$TOTP_DIR/secret.erin"
cur=$(phi_journal_cursor)
step=$(totp_now_step)
phi_assert_eq "$(login erin phi-enrol --answer "$(totp_code erin "$step")")" PAM_SUCCESS \
    "the next login's first code, from the app that scanned it, activates that token and logs in"
TOTP_LAST[erin]=$step
phi_assert_eq "$(grep -c '^prompt-off: ' "$CONV")" 1 "with the one code prompt"
phi_assert_not_contains "$(cat "$CONV")" otpauth "and without a second offer"
phi_journal_wait --timeout 5 --after "$cur" PHI_EVENT=enrolled PHI_USER=erin PHI_SERVICE=phi-enrol >/dev/null ||
    phi_fail "the activation is journaled as enrolled"
phi_assert_eq "$(login erin phi-auth --answer "$(totp_code erin "$(totp_fresh_step erin)")")" PAM_SUCCESS \
    "erin's token is active"

# --- the policy switched off (SIGHUP): a ticket holder is offered nothing ------
sed -i '/^enroll_at_login/d' "$TOTP_CONF"
cur=$(phi_journal_cursor)
kill -HUP "$TOTP_DAEMON_PID"
phi_journal_wait --timeout 10 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd \
    MESSAGE="configuration reloaded from $TOTP_CONF" >/dev/null || phi_fail "the daemon reloads"
issued=$(totp_phictl_as root totp issue carol --expires 1h)
phi_assert_contains "$issued" "the user runs: phictl totp enroll" "policy off: phictl totp issue names phictl"
phi_assert_not_contains "$issued" "logs in" "and not a login"
cur=$(phi_journal_cursor)
phi_assert_eq "$(login carol phi-enrol --answer '')" PAM_AUTH_ERR "policy off: a ticket holder is denied"
phi_assert_not_contains "$(cat "$CONV")" otpauth "policy off: no token is offered"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" PHI_EVENT=auth_fail PHI_USER=carol)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_REASON)" no_token "policy off: auth_fail no_token"
phi_assert_contains "$(totp_phictl_as carol totp enroll </dev/null 2>&1 || true)" otpauth \
    "carol's ticket was not used up: phictl totp enroll still takes it"

#!/usr/bin/env bash
# Default-deny host access through PAM: a stack of pam_phi for auth, account
# and session (service phi-login) against the real daemon, its policy and a
# private directory, run by the repository's pam_driver and by Debian's
# pamtester. Cases: a directory user the policy allows (by group membership,
# or by primary group alone) gets auth, account and a session opened and
# closed; one it does not allow, or a deny rule names, is refused at account
# after a right code (PAM_PERM_DENIED, journaled access_denied with the
# rule); an unknown name is refused; `phictl reload` of a policy that allows
# them lets them in with the same daemon process; a broken policy on reload
# leaves the old one in force (phictl, status and journal say so); the daemon
# stopped: account is PAM_AUTHINFO_UNAVAIL. For each case `phictl policy
# check` agrees with PAM. Sessions: `phictl sessions` lists an open one (more
# than a page of them too), the process that held one SIGKILLed: the daemon
# closes it (process_exited); killed while the daemon is down: closed at the
# next start (process_gone).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
# shellcheck source-path=SCRIPTDIR source=access-lib.bash
source "$(dirname "$0")/access-lib.bash"
phi_harness_init "$@"
command -v pamtester >/dev/null || phi_die "pamtester is missing; run ./scripts/setup"
PAM_DRIVER=$PHI_BUILD_DIR/tests/pam_driver
[ -x "$PAM_DRIVER" ] || phi_die "build the tree first ($PAM_DRIVER)"

access_setup
access_daemon_start
DAEMON_PID0=$TOTP_DAEMON_PID
totp_stack phi-login "auth required $PAM_PHI" \
    "account required $PAM_PHI" \
    "session required $PAM_PHI" \
    "password required pam_deny.so"
for u in alice bob carol dave erin lena; do
    totp_enroll "$u"
done
access_san_env "$PHI_TMP"

# login USER [pam_driver args]: auth (with a fresh right code), account, open
# and close on one handle, as a login program does; the driver's lines
# ("auth PAM_SUCCESS", "env PHI_SESSION_ID=...") in LOGIN, the last result in
# LOGIN_RESULT. The code counts as used whether or not account let them in.
login() {
    local user=$1 step
    shift
    step=$(totp_fresh_step "$user")
    LOGIN=$(totp_pam phi-login "$user" --op auth,account,open,close --rhost 192.0.2.7 --tty pts/3 \
        --answer "$(totp_code "$user" "$step")" "$@")
    TOTP_LAST[$user]=$step
    LOGIN_RESULT=$(printf '%s\n' "$LOGIN" | awk '$2 ~ /^PAM_/ { r = $1 " " $2 } END { print r }')
}

# agrees USER WHAT: `phictl policy check USER --service phi-login` says what
# the last PAM run did (exit 0 when account let them in, 1 when the policy
# refused), and names the rule the journal entry ENTRY named.
agrees() {
    local user=$1 what=$2 entry=${3:-} want=1
    [[ "$LOGIN" != *"account PAM_SUCCESS"* ]] || want=0
    policy_check "$user" phi-login
    phi_assert_eq "$PC_RC" "$want" "$what: phictl policy check agrees (exit $want)"
    phi_assert_eq "$(pc_field host)" "$ACCESS_HOST" "$what: the check is about this host"
    if [ -n "$entry" ]; then
        phi_assert_eq "$(pc_field rule)" "$(jfield "$entry" PHI_RULE)" "$what: the check names the journal's rule"
    fi
}

# ---------------------------------------------------------------- allowed
cur=$(phi_journal_cursor)
login alice
phi_assert_eq "$LOGIN" "auth PAM_SUCCESS
account PAM_SUCCESS
open PAM_SUCCESS
env PHI_SESSION_ID=$(sed -n 's/^env PHI_SESSION_ID=//p' <<<"$LOGIN")
close PAM_SUCCESS" "alice (clinicians): auth, account, session open and close all succeed"
sid=$(sed -n 's/^env PHI_SESSION_ID=//p' <<<"$LOGIN")
phi_assert_match "$sid" '^[0-9a-f]{32}$' "pam_phi puts the session id in the PAM environment"
ev=$(access_event "$cur" access_granted alice)
phi_assert_eq "$(jfield "$ev" PHI_RULE)" clinicians "access_granted names the rule clinicians"
phi_assert_eq "$(jfield "$ev" PHI_SERVICE)/$(jfield "$ev" PHI_RHOST)/$(jfield "$ev" PHI_TTY)" phi-login/192.0.2.7/pts/3 \
    "access_granted names the service, the remote host and the tty"
phi_assert_eq "$(jfield "$ev" PRIORITY)" 6 "access_granted is at info priority"
phi_assert_ne "$(jfield "$ev" PHI_REASON)" "" "access_granted gives a reason"
opened=$(access_event "$cur" session_open alice)
closed=$(access_event "$cur" session_close alice)
phi_assert_eq "$(jfield "$opened" PHI_SESSION)" "$sid" "session_open carries the id pam_phi exported"
phi_assert_eq "$(jfield "$closed" PHI_SESSION)" "$sid" "session_close carries the same id"
phi_assert_eq "$(jfield "$closed" PHI_REASON)" closed "closed by pam_close_session: PHI_REASON=closed"
phi_assert_eq "$(jfield "$opened" PHI_HOST)/$(jfield "$opened" PHI_SERVICE)" "$ACCESS_HOST/phi-login" \
    "session_open names the host and the service"
agrees alice "alice" "$ev"
phi_assert_eq "$(pc_field allowed)" true "phictl: alice allowed"

# bob is in clinicians through his primary group only: the man page's
# "primary or supplementary".
cur=$(phi_journal_cursor)
login bob
phi_assert_eq "$LOGIN_RESULT" "close PAM_SUCCESS" "bob (clinicians as primary group only) gets in"
ev=$(access_event "$cur" access_granted bob)
phi_assert_eq "$(jfield "$ev" PHI_RULE)" clinicians "bob is let in by the clinicians rule"
agrees bob "bob" "$ev"

# The local account lena, by a users rule.
cur=$(phi_journal_cursor)
login lena
phi_assert_eq "$LOGIN_RESULT" "close PAM_SUCCESS" "the local account lena gets in"
agrees lena "lena" "$(access_event "$cur" access_granted lena)"

# ---------------------------------------------------------------- refused
cur=$(phi_journal_cursor)
login carol
phi_assert_eq "$LOGIN" "auth PAM_SUCCESS
account PAM_PERM_DENIED" "carol (billing, no rule): the right code passes auth, account refuses (PAM_PERM_DENIED)"
ev=$(access_event "$cur" access_denied carol)
phi_assert_eq "$(jfield "$ev" PHI_RULE)" default-deny "access_denied names the deciding rule: default-deny"
phi_assert_eq "$(jfield "$ev" PRIORITY)" 5 "access_denied is at notice priority"
phi_assert_eq "$(jfield "$ev" PHI_SERVICE)/$(jfield "$ev" PHI_RHOST)/$(jfield "$ev" PHI_TTY)" phi-login/192.0.2.7/pts/3 \
    "access_denied names the service, the remote host and the tty"
phi_assert_ne "$(jfield "$ev" PHI_REASON)" "" "access_denied gives a reason"
phi_assert_eq "$(access_none "$cur" session_open carol)" 0 "no session is opened for carol"
agrees carol "carol" "$ev"
phi_assert_eq "$(pc_field refusal)" no-rule "phictl: no rule lets carol in"

cur=$(phi_journal_cursor)
login dave
phi_assert_eq "$LOGIN" "auth PAM_SUCCESS
account PAM_PERM_DENIED" "dave (clinicians, but a deny rule): refused at account"
ev=$(access_event "$cur" access_denied dave)
phi_assert_eq "$(jfield "$ev" PHI_RULE)" no-dave "the deny rule no-dave decides over the clinicians allow"
agrees dave "dave" "$ev"
phi_assert_eq "$(pc_field refusal)" deny-rule "phictl: refused by a deny rule"

# A name nobody has: account refuses it (the daemon knows no such user).
cur=$(phi_journal_cursor)
LOGIN=$(totp_pam phi-login nosuchuser --op account)
phi_assert_eq "$LOGIN" PAM_PERM_DENIED "an unknown user is refused at account"
ev=$(access_event "$cur" access_denied nosuchuser)
phi_assert_eq "$(jfield "$ev" PHI_RULE)" default-deny "and journaled as access_denied (default-deny)"
agrees nosuchuser "an unknown user" "$ev"
phi_assert_eq "$(pc_field refusal)" unknown-user "phictl: an unknown user"

# ---------------------------------------------------------------- pamtester
# Debian's pamtester, the service file where libpam looks for it (this
# test's mount namespace), the code on its standard input.
pamtester_run() { # USER CODE OPERATION...
    local user=$1 code=$2
    shift 2
    PT_RC=0
    PT_OUT=$(printf '%s\n' "$code" | phi_ns_run --bind "$TOTP_DIR/pam.d/phi-login:/etc/pam.d/phi-login" -- \
        timeout 20 "${SAN_ENV[@]}" pamtester -v -I rhost=192.0.2.8 -I tty=pts/4 phi-login "$user" "$@" 2>&1) || PT_RC=$?
}
cur=$(phi_journal_cursor)
step=$(totp_fresh_step erin)
pamtester_run erin "$(totp_code erin "$step")" authenticate acct_mgmt open_session close_session
TOTP_LAST[erin]=$step
phi_assert_eq "$PT_RC" 0 "pamtester: erin (clinicians) authenticates, passes account, opens and closes a session"
phi_assert_contains "$PT_OUT" "session has successfully been closed" "pamtester says the session was closed"
ev=$(access_event "$cur" access_granted erin)
phi_assert_eq "$(jfield "$ev" PHI_RHOST)/$(jfield "$ev" PHI_TTY)" 192.0.2.8/pts/4 "pamtester's items reach the journal"
phi_assert_eq "$(jfield "$(access_event "$cur" session_open erin)" PHI_SESSION)" \
    "$(jfield "$(access_event "$cur" session_close erin)" PHI_SESSION)" "pamtester's session: open and close, one id"
LOGIN="account PAM_SUCCESS"
agrees erin "pamtester, erin" "$ev"

cur=$(phi_journal_cursor)
step=$(totp_fresh_step carol)
pamtester_run carol "$(totp_code carol "$step")" authenticate acct_mgmt open_session
TOTP_LAST[carol]=$step
phi_assert_eq "$PT_RC" 1 "pamtester: carol fails"
phi_assert_contains "$PT_OUT" "successfully authenticated" "after a right code"
phi_assert_contains "$PT_OUT" "Permission denied" "at account: permission denied"
ev=$(access_event "$cur" access_denied carol)
phi_assert_eq "$(jfield "$ev" PHI_RULE)" default-deny "journaled with the rule"
phi_assert_eq "$(access_none "$cur" session_open carol)" 0 "pamtester opened no session for carol"
LOGIN="account PAM_PERM_DENIED"
agrees carol "pamtester, carol" "$ev"

# ---------------------------------------------------------------- reload
cur=$(phi_journal_cursor)
access_policy v2
access_reload
phi_assert_eq "$RELOAD_RC" 0 "phictl reload takes the policy that adds the billing rule"
phi_assert_eq "$(access_status policy_rules)" 4 "status: 4 rules in force"
login carol
phi_assert_eq "$LOGIN_RESULT" "close PAM_SUCCESS" "after the reload carol gets in (session opened and closed)"
ev=$(access_event "$cur" access_granted carol)
phi_assert_eq "$(jfield "$ev" PHI_RULE)" billing "let in by the new rule billing"
phi_assert_eq "$TOTP_DAEMON_PID" "$DAEMON_PID0" "by the same daemon process: nothing was restarted"
phi_check "which is still running" kill -0 "$DAEMON_PID0"
agrees carol "carol after the reload" "$ev"
# The verifier takes the new policy at its next round; so does pamtester.
cur=$(phi_journal_cursor)
pamtester_run carol "" acct_mgmt
phi_assert_eq "$PT_RC" 0 "pamtester: carol passes account now"
phi_assert_eq "$(jfield "$(access_event "$cur" access_granted carol)" PHI_RULE)" billing "journaled: billing"

# A broken policy: refused, the last good one (v2) stays in force although the
# file now has no billing rule.
cur=$(phi_journal_cursor)
access_policy broken
access_reload
phi_assert_eq "$RELOAD_RC" 1 "phictl reload of a broken policy exits 1"
phi_assert_contains "$RELOAD_OUT" "refused" "and says it was refused"
phi_assert_contains "$(access_status policy)" "stays in force" "status: the old policy stays in force"
phi_assert_eq "$(access_status policy_rules)" 4 "status: still its 4 rules"
ev=$(phi_journal_wait --first --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=policy_reload PHI_OUTCOME=refused) ||
    phi_fail "no policy_reload refused in the journal"
phi_assert_match "$(jfield "$ev" PHI_REASON)" "^$ACCESS_POLICY:[0-9]+: " "the journal names the broken line"
cur=$(phi_journal_cursor)
login carol
phi_assert_eq "$LOGIN_RESULT" "close PAM_SUCCESS" "carol still gets in: the old policy decides"
ev=$(access_event "$cur" access_granted carol)
phi_assert_eq "$(jfield "$ev" PHI_RULE)" billing "still by the billing rule"
agrees carol "carol after the refused reload" "$ev"
cur=$(phi_journal_cursor)
LOGIN=$(totp_pam phi-login dave --op account)
phi_assert_eq "$LOGIN" PAM_PERM_DENIED "dave is still refused"
LOGIN="account $LOGIN"
agrees dave "dave after the refused reload" "$(access_event "$cur" access_denied dave)"
access_policy v2
access_reload
phi_assert_eq "$RELOAD_RC" 0 "the good policy back"

# ---------------------------------------------------------------- sessions
# A session held open: listed by phictl sessions, with this process's pid.
hold=$PHI_TMP/hold.alice
phi_spawn hold-alice "$PAM_DRIVER" --confdir "$TOTP_DIR/pam.d" --service phi-login --user alice \
    --op account,open,close --rhost 192.0.2.9 --tty pts/5 --hold "$hold"
holder=$PHI_LAST_PID
phi_wait_for --timeout 10 --what "the held session" grep -q '^env PHI_SESSION_ID=' "$PHI_TMP/hold-alice.log" ||
    phi_fail "pam_driver opened no session" "$(cat "$PHI_TMP/hold-alice.log")"
sid=$(sed -n 's/^env PHI_SESSION_ID=//p' "$PHI_TMP/hold-alice.log")
table=$(access_ctl sessions)
phi_assert_match "$table" "^OPENED +USER +SERVICE +FROM +TTY +PID +SESSION" "phictl sessions prints its table"
phi_assert_match "$table" "alice +phi-login +192\.0\.2\.9 +pts/5 +$holder +$sid" \
    "phictl sessions lists alice's open session with the pid of the process that holds it"
row=$(access_sessions_json | jq -c --arg id "$sid" '.[] | select(.session == $id)')
phi_assert_eq "$(jq -r '[.user, .service, .rhost, .tty, .host, .pid] | @tsv' <<<"$row")" \
    "alice	phi-login	192.0.2.9	pts/5	$ACCESS_HOST	$holder" "phictl --json sessions: the same, typed"
phi_assert_match "$(jq -r .opened <<<"$row")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "opened in ISO 8601 UTC"
# A pam_close_session() naming alice's session for bob (pam_phi never sends
# one; access_wire.py does) is refused on its own: the account requests the
# daemon serves in the same round are answered as usual, and alice's session
# stays open.
wire=$(python3 "$PHI_SOURCE_DIR/tests/integration/access_wire.py" /run/phiaccessd/pam bob "$sid" alice \
    phi-login 20 2>&1 || true)
phi_assert_eq "$(grep -c '^account OK$' <<<"$wire" || true)" 20 \
    "the 20 account requests sent together with it are all answered OK"
phi_assert_eq "$(sed -n 1p <<<"$wire")" "close ERROR 2: no open session $sid of bob" \
    "closing alice's session as bob is refused: no such session of bob's"
phi_check "alice's session is still open" access_session_listed "$sid"
cur=$(phi_journal_cursor)
touch "$hold"
phi_wait_for --timeout 10 --what "pam_driver closes" grep -q '^close PAM_SUCCESS' "$PHI_TMP/hold-alice.log" ||
    phi_fail "the held session did not close" "$(cat "$PHI_TMP/hold-alice.log")"
phi_assert_eq "$(jfield "$(access_event "$cur" session_close alice)" PHI_SESSION)" "$sid" "closed with its id"
phi_check "phictl sessions no longer lists it" access_session_unlisted "$sid"
phi_assert_eq "$(access_ctl sessions)" "no open sessions" "phictl sessions: no open sessions"

# More sessions than one reply holds: phictl pages through all of them.
rm -f "$hold"
many=70
for i in $(seq 1 "$many"); do
    phi_spawn "hold-$i" "$PAM_DRIVER" --confdir "$TOTP_DIR/pam.d" --service phi-login --user frank \
        --op open,close --tty "pts/$i" --hold "$hold"
done
many_listed() { # N
    local n
    n=$(access_sessions_json | jq length)
    [ "$n" = "$1" ] || { echo "phictl sessions lists $n"; return 1; }
}
opened_count() { cat "$PHI_TMP"/hold-[0-9]*.log | grep -c '^open PAM_SUCCESS' || true; }
many_opened() { [ "$(opened_count)" = "$many" ]; }
phi_wait_for --timeout 60 --what "$many open sessions" many_opened || true
phi_assert_eq "$(opened_count)" "$many" "$many sessions opened at once"
phi_check "phictl --json sessions lists all $many" many_listed "$many"
phi_assert_eq "$(access_sessions_json | jq -r '[.[].tty] | unique | length')" "$many" "each of them once"
phi_assert_eq "$(access_ctl sessions | grep -c ' frank ')" "$many" "the table too"
touch "$hold"
phi_check "all of them closed" phi_wait_for --timeout 60 many_listed 0

# The holder SIGKILLed: nobody calls pam_close_session; the daemon notices.
rm -f "$hold"
cur=$(phi_journal_cursor)
phi_spawn hold-gone "$PAM_DRIVER" --confdir "$TOTP_DIR/pam.d" --service phi-login --user alice \
    --op open,close --hold "$hold"
holder=$PHI_LAST_PID
opened=$(access_event "$cur" session_open alice) || phi_fail "no session_open for the holder"
sid=$(jfield "$opened" PHI_SESSION)
phi_assert_eq "$(jfield "$opened" PHI_PID)" "$holder" "session_open names the process that opened it (PHI_PID)"
phi_check "it is listed" access_session_listed "$sid"
phi_stop_pid --kill "$holder"
closed=$(phi_journal_wait --timeout 10 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=session_close \
    "PHI_SESSION=$sid") || phi_fail "the daemon did not close the session of the killed process"
phi_assert_eq "$(jfield "$closed" PHI_REASON)/$(jfield "$closed" PHI_ACTOR)" process_exited/phiaccessd \
    "session_close says why (process_exited) and who closed it (phiaccessd)"
phi_assert_eq "$(jfield "$closed" PHI_USER)" alice "for alice"
phi_check "phictl sessions no longer lists it" access_session_unlisted "$sid"

# Killed while the daemon was down: closed at its next start.
cur=$(phi_journal_cursor)
phi_spawn hold-restart "$PAM_DRIVER" --confdir "$TOTP_DIR/pam.d" --service phi-login --user bob \
    --op open,close --hold "$hold"
holder=$PHI_LAST_PID
sid=$(jfield "$(access_event "$cur" session_open bob)" PHI_SESSION)
[ -n "$sid" ] || phi_fail "no session_open for bob"
totp_daemon_stop
phi_stop_pid --kill "$holder"
cur=$(phi_journal_cursor)
access_daemon_start
closed=$(phi_journal_wait --timeout 10 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=session_close \
    "PHI_SESSION=$sid") || phi_fail "the restarted daemon did not close the session of the process gone meanwhile"
phi_assert_eq "$(jfield "$closed" PHI_REASON)/$(jfield "$closed" PHI_ACTOR)" process_gone/phiaccessd \
    "closed at start: process_gone, by phiaccessd"
phi_check "phictl sessions no longer lists it" access_session_unlisted "$sid"

# A session still open across a restart stays open, and is watched again.
rm -f "$hold"
cur=$(phi_journal_cursor)
phi_spawn hold-kept "$PAM_DRIVER" --confdir "$TOTP_DIR/pam.d" --service phi-login --user bob \
    --op open,close --hold "$hold"
holder=$PHI_LAST_PID
sid=$(jfield "$(access_event "$cur" session_open bob)" PHI_SESSION)
totp_daemon_stop
access_daemon_start
phi_check "a session whose process lives on is still listed after a restart" access_session_listed "$sid"
cur=$(phi_journal_cursor)
phi_stop_pid --kill "$holder"
closed=$(phi_journal_wait --timeout 10 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=session_close \
    "PHI_SESSION=$sid") || phi_fail "the session watched again was not closed when its process died"
phi_assert_eq "$(jfield "$closed" PHI_REASON)" process_exited "and is closed when its process dies (process_exited)"

# ---------------------------------------------------------------- daemon stopped
totp_daemon_stop
LOGIN=$(totp_pam phi-login alice --op account)
phi_assert_eq "$LOGIN" PAM_AUTHINFO_UNAVAIL "daemon stopped: account is PAM_AUTHINFO_UNAVAIL for an allowed user"
phi_assert_eq "$(totp_pam phi-login alice --op open)" PAM_SESSION_ERR "and no session opens"
pamtester_run alice "" acct_mgmt
phi_assert_eq "$PT_RC" 1 "pamtester: account fails with the daemon stopped"
policy_check alice phi-login
phi_assert_ne "$PC_RC" 0 "phictl policy check cannot say allowed either (exit $PC_RC)"
phi_assert_contains "$PC_JSON" "phiaccessd" "and says the daemon cannot be reached"

phi_assert_eq "$(access_san_reports)" "" "no sanitizer report from pam_phi inside pamtester"

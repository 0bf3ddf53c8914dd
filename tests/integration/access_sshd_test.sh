#!/usr/bin/env bash
# Default-deny host access at a real SSH login: OpenSSH's sshd (private
# network namespace, started as integration.totp_sshd starts it) with UsePAM
# and the PAM service sshd bound to the shipped stack's three types: auth,
# account and session from pam_phi. sshd resolves the users through nss_phi
# (nsswitch.conf "passwd: files phi", the daemon's snapshot of a private
# slapd), so they are directory users to sshd and to the policy alike. Cases:
# a user the policy allows logs in (the command runs, access_granted,
# session_open and session_close with one id, which the session's
# environment has as PHI_SESSION_ID); one it does not is refused after a
# right code (ssh exits 255, access_denied with the rule); phictl reload of a
# policy that allows them lets them in; a broken policy on reload leaves the
# old one in force; with the daemon stopped both a code login and a key-only
# login (where account alone decides) are refused. `phictl policy check`
# agrees with sshd each time. Sessions: the per-connection privileged sshd
# ("sshd: USER [priv]") holds the session; SIGKILLed, the daemon closes it
# (process_exited, by phiaccessd); killed while the daemon is down, it is
# closed at the next start (process_gone).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
# shellcheck source-path=SCRIPTDIR source=nss_lib.bash
source "$(dirname "$0")/nss_lib.bash"
# shellcheck source-path=SCRIPTDIR source=access-lib.bash
source "$(dirname "$0")/access-lib.bash"
phi_harness_init "$@"
SSHD=/usr/sbin/sshd
[ -x "$SSHD" ] || phi_die "sshd is missing (openssh-server); run ./scripts/setup"
command -v ssh >/dev/null || phi_die "ssh is missing (openssh-client); run ./scripts/setup"

nss_init
nss_install
access_setup
# The snapshot where nss_phi reads it: sshd learns the directory users there.
sed -i "s|^snapshot = .*|snapshot = $NSS_SNAPSHOT|" "$TOTP_CONF"
access_daemon_start
phi_wait_for --timeout 30 --what "the NSS snapshot" test -s "$NSS_SNAPSHOT" || phi_die "no snapshot published"
phi_assert_eq "$(nss_run getent passwd carol | cut -d: -f3,6)" "10003:$PHI_TMP/home/carol" \
    "glibc resolves the directory user carol through nss_phi, as sshd will"
phi_assert_eq "$(access_ctl --json user show carol | jq -r .source)" directory \
    "and the daemon, whose policy decides, knows carol as a directory user"
for u in alice carol dave frank gina; do
    totp_enroll "$u"
done

# ---------------------------------------------------------------- sshd
SSH_DIR=$PHI_TMP/ssh
mkdir -p "$SSH_DIR"
phi_private_dir /run/sshd
chmod 0755 "$PHI_TMP"
mkdir -p "$PHI_TMP/home"
chmod 0755 "$PHI_TMP/home"
for u in "${ACCESS_DIR_USERS[@]}"; do
    mkdir -p "$PHI_TMP/home/$u/.ssh"
    chmod 0755 "$PHI_TMP/home/$u"
    chmod 0700 "$PHI_TMP/home/$u/.ssh"
    chown -R "${TOTP_UID[$u]}:${TOTP_UID[$u]}" "$PHI_TMP/home/$u"
done
ssh-keygen -q -t ed25519 -N '' -C phi-test-host -f "$SSH_DIR/host_key"
ssh-keygen -q -t ed25519 -N '' -C erin -f "$SSH_DIR/id_erin"
install -m 0600 -o "${TOTP_UID[erin]}" -g "${TOTP_UID[erin]}" "$SSH_DIR/id_erin.pub" \
    "$PHI_TMP/home/erin/.ssh/authorized_keys"

# The shipped stack's three types (policy/pam.d/sshd), session required here
# so that a session the daemon does not record ends the login.
totp_stack sshd "auth required $PAM_PHI" \
    "account required $PAM_PHI" \
    "session required $PAM_PHI" \
    "password required pam_deny.so"
access_san_env "$SSH_DIR"

# sshd_start NAME PORT METHODS: as in integration.totp_sshd, plus nss_phi.
sshd_start() {
    local name=$1 port=$2 methods=$3 conf pidfile
    conf=$SSH_DIR/sshd_config.$name
    pidfile=$SSH_DIR/sshd.$name.pid
    cat >"$conf" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $SSH_DIR/host_key
PidFile $pidfile
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PubkeyAuthentication yes
AuthenticationMethods $methods
AuthorizedKeysFile .ssh/authorized_keys
PermitRootLogin no
UseDNS no
PrintMotd no
LogLevel VERBOSE
CONF
    phi_check "sshd accepts its config ($name)" "$SSHD" -t -f "$conf"
    phi_spawn "sshd-$name" phi_ns_run --bind "$PHI_TMP/nsswitch.conf:/etc/nsswitch.conf" \
        --bind "$PHI_TMP/passwd:/etc/passwd" --bind "$PHI_TMP/group:/etc/group" \
        --bind "$TOTP_DIR/pam.d/sshd:/etc/pam.d/sshd" -- \
        "${SAN_ENV[@]}" "$SSHD" -D -f "$conf"
    phi_wait_for --timeout 15 --what "sshd $name pid file" test -s "$pidfile" ||
        phi_die "sshd ($name) did not start; its log:"$'\n'"$(tail -n 30 "$PHI_TMP/sshd-$name.log")"
    printf '[127.0.0.1]:%s %s\n' "$port" "$(cat "$SSH_DIR/host_key.pub")" >>"$SSH_DIR/known_hosts"
    if [ -n "$SAN_LIBS" ]; then
        phi_assert_contains "$(cat "/proc/$(cat "$pidfile")/maps")" libasan \
            "sshd ($name) runs with the sanitizer runtimes that pam_phi needs"
    fi
}
KBD_PORT=2222
PK_PORT=2223
sshd_start kbd "$KBD_PORT" keyboard-interactive
# Key only: no code is asked, account alone decides after the key.
sshd_start pk "$PK_PORT" publickey

# The client, driven by expect: answers each code prompt with the next code
# given; runs COMMAND (default: says who it is, its uid and the session id
# pam_phi put in the environment); waits up to WAIT seconds for the end.
cat >"$SSH_DIR/login.exp" <<'EXP'
lassign $argv port user codes key known_hosts wait command
set timeout $wait
set codes [split $codes ,]
set opts [list -F /dev/null -p $port -o UserKnownHostsFile=$known_hosts \
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentityAgent=none \
    -o IdentitiesOnly=yes -o NumberOfPasswordPrompts=[expr {max(1, [llength $codes])}] -o ConnectTimeout=10 \
    -o PreferredAuthentications=publickey,keyboard-interactive]
if {$key eq ""} {
    lappend opts -o PubkeyAuthentication=no
} else {
    lappend opts -i $key
}
set prompts 0
spawn -noecho ssh {*}$opts $user@127.0.0.1 $command
expect {
    -re {[^\r\n]*Verification code: } {
        send -- "[lindex $codes $prompts]\r"
        incr prompts
        exp_continue
    }
    timeout { puts "\nEXPECT: timed out"; exit 124 }
    eof {}
}
set status [lindex [wait] 3]
puts "\nEXPECT-PROMPTS: $prompts"
exit $status
EXP
# shellcheck disable=SC2016 # run by the remote shell
WHOAMI='echo LOGGED-IN-AS-$USER-$(id -u) SESSION-ID=$PHI_SESSION_ID'

# ssh_login PORT USER CODE[,CODE...] [KEY]
ssh_login() {
    local port=$1 user=$2 code=$3 key=${4:-}
    LOGIN_RC=0
    LOGIN_OUT=$(timeout 60 expect -f "$SSH_DIR/login.exp" -- "$port" "$user" "$code" "$key" \
        "$SSH_DIR/known_hosts" 30 "$WHOAMI" 2>&1) || LOGIN_RC=$?
    LOGIN_OUT=${LOGIN_OUT//$'\r'/}
    LOGIN_PROMPTS=$(printf '%s\n' "$LOGIN_OUT" | sed -n 's/^EXPECT-PROMPTS: //p')
}

# code_login USER: a keyboard-interactive login with USER's next right code.
code_login() {
    local user=$1 step
    step=$(totp_fresh_step "$user")
    ssh_login "$KBD_PORT" "$user" "$(totp_code "$user" "$step")"
    TOTP_LAST[$user]=$step
}

expect_in() { # USER WHAT
    local user=$1 what=$2
    phi_assert_eq "$LOGIN_RC" 0 "$what: ssh exits 0"
    phi_assert_contains "$LOGIN_OUT" "LOGGED-IN-AS-$user-${TOTP_UID[$user]} " \
        "$what: the command ran as $user (uid ${TOTP_UID[$user]}, from the directory)"
}

expect_out() { # WHAT
    phi_assert_eq "$LOGIN_RC" 255 "$1: ssh exits 255 (refused)"
    phi_assert_not_contains "$LOGIN_OUT" "LOGGED-IN-AS" "$1: no command output"
    phi_assert_contains "$LOGIN_OUT" "Permission denied" "$1: ssh says permission denied"
}

sshd_said() { # CURSOR: what sshd (and the PAM modules in it) journaled since CURSOR
    phi_journal_json --after "$1" SYSLOG_IDENTIFIER=sshd | phi_json_field MESSAGE
}
sshd_said_has() { # CURSOR TEXT
    [[ "$(sshd_said "$1")" == *"$2"* ]]
}

# agrees USER WHAT EXPECTED_RC [ENTRY]: phictl policy check USER --service
# sshd exits EXPECTED_RC (0 sshd let them in, 1 it refused them) and names the
# rule ENTRY (the journal's access_* entry) names.
agrees() {
    local user=$1 what=$2 want=$3 entry=${4:-}
    policy_check "$user" sshd
    phi_assert_eq "$PC_RC" "$want" "$what: phictl policy check agrees with sshd (exit $want)"
    if [ -n "$entry" ]; then
        phi_assert_eq "$(pc_field rule)" "$(jfield "$entry" PHI_RULE)" "$what: and names the rule the journal names"
    fi
}

# ---------------------------------------------------------------- allowed
cur=$(phi_journal_cursor)
code_login alice
expect_in alice "alice (clinicians)"
phi_assert_eq "$LOGIN_PROMPTS" 1 "one code prompt"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=access_granted \
    PHI_USER=alice) || phi_fail "no access_granted for alice"
phi_assert_eq "$(jfield "$ev" PHI_RULE)" clinicians "access_granted names the rule"
phi_assert_eq "$(jfield "$ev" PHI_SERVICE)/$(jfield "$ev" PHI_RHOST)/$(jfield "$ev" PHI_TTY)" sshd/127.0.0.1/ssh \
    "access_granted names sshd's service, the client's address and sshd's tty"
opened=$(access_event "$cur" session_open alice) || phi_fail "no session_open for alice"
sid=$(jfield "$opened" PHI_SESSION)
phi_assert_match "$sid" '^[0-9a-f]{32}$' "session_open carries a session id"
closed=$(phi_journal_wait --first --timeout 10 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=session_close \
    PHI_USER=alice) || phi_fail "no session_close for alice"
phi_assert_eq "$(jfield "$closed" PHI_SESSION)" "$sid" "session_close has the same id as session_open"
phi_assert_eq "$(jfield "$closed" PHI_REASON)" closed "closed by sshd's pam_close_session (PHI_REASON=closed)"
phi_assert_contains "$LOGIN_OUT" "SESSION-ID=$sid" "the login's environment has the session id (PHI_SESSION_ID)"
phi_assert_eq "$(jfield "$opened" PHI_SERVICE)/$(jfield "$opened" PHI_RHOST)" sshd/127.0.0.1 \
    "session_open names the service and the client"
agrees alice "alice" 0 "$ev"
phi_assert_eq "$(access_ctl sessions)" "no open sessions" "after the logout no session is listed"

# ---------------------------------------------------------------- refused
cur=$(phi_journal_cursor)
code_login carol
expect_out "carol (no rule for billing), right code"
phi_check "the right code was accepted" access_event "$cur" auth_ok carol
ev=$(access_event "$cur" access_denied carol) || phi_fail "no access_denied for carol"
phi_assert_eq "$(jfield "$ev" PHI_RULE)" default-deny "access_denied names the rule (default-deny)"
phi_assert_eq "$(jfield "$ev" PHI_SERVICE)/$(jfield "$ev" PHI_RHOST)" sshd/127.0.0.1 "for sshd, from the client"
phi_assert_eq "$(access_none "$cur" session_open carol)" 0 "no session for carol"
agrees carol "carol" 1 "$ev"

cur=$(phi_journal_cursor)
code_login dave
expect_out "dave (a deny rule), right code"
ev=$(access_event "$cur" access_denied dave) || phi_fail "no access_denied for dave"
phi_assert_eq "$(jfield "$ev" PHI_RULE)" no-dave "access_denied names the deny rule no-dave"
agrees dave "dave" 1 "$ev"

# ---------------------------------------------------------------- reload
access_policy v2
access_reload
phi_assert_eq "$RELOAD_RC" 0 "phictl reload takes the policy with the billing rule"
cur=$(phi_journal_cursor)
code_login carol
expect_in carol "carol after the reload, sshd and the daemon not restarted"
ev=$(access_event "$cur" access_granted carol) || phi_fail "no access_granted for carol"
phi_assert_eq "$(jfield "$ev" PHI_RULE)" billing "let in by the new rule"
agrees carol "carol after the reload" 0 "$ev"

access_policy broken
access_reload
phi_assert_eq "$RELOAD_RC" 1 "phictl reload refuses the broken policy"
phi_assert_contains "$(access_status policy)" "stays in force" "status: the old policy stays in force"
phi_check "the journal says the reload was refused" phi_journal_wait --after "$cur" \
    SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=policy_reload PHI_OUTCOME=refused
cur=$(phi_journal_cursor)
code_login carol
expect_in carol "carol after the refused reload (the file has no billing rule now)"
ev=$(access_event "$cur" access_granted carol) || phi_fail "no access_granted for carol"
phi_assert_eq "$(jfield "$ev" PHI_RULE)" billing "still by the billing rule: the old policy decides"
agrees carol "carol after the refused reload" 0 "$ev"
# Key only, account alone: dave has no key, erin has; erin is let in, and
# the clinicians rule is what lets her.
cur=$(phi_journal_cursor)
ssh_login "$PK_PORT" erin "" "$SSH_DIR/id_erin"
expect_in erin "erin, key only (account decides)"
ev=$(access_event "$cur" access_granted erin) || phi_fail "no access_granted for erin"
agrees erin "erin" 0 "$ev"
access_policy v2
access_reload

# ---------------------------------------------------------------- sessions
# ssh_hold NAME USER: a login that stays (its command sleeps), in the
# background; SID and PRIV: the session's id and the process holding it.
ssh_hold() {
    local name=$1 user=$2 step cur ev
    cur=$(phi_journal_cursor)
    step=$(totp_fresh_step "$user")
    # shellcheck disable=SC2016 # run by the remote shell
    phi_spawn "$name" expect -f "$SSH_DIR/login.exp" -- "$KBD_PORT" "$user" "$(totp_code "$user" "$step")" "" \
        "$SSH_DIR/known_hosts" 120 'echo HOLDING-$USER; exec sleep 100'
    HOLD_PID=$PHI_LAST_PID
    TOTP_LAST[$user]=$step
    ev=$(phi_journal_wait --first --timeout 20 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=session_open \
        "PHI_USER=$user") || phi_fail "no session_open for $user's login" "$(cat "$PHI_TMP/$name.log")"
    SID=$(jfield "$ev" PHI_SESSION)
    PRIV=$(jfield "$ev" PHI_PID)
    phi_wait_for --timeout 10 --what "$user's command" grep -q "HOLDING-$user" "$PHI_TMP/$name.log" ||
        phi_fail "$user's login did not run its command" "$(cat "$PHI_TMP/$name.log")"
}

ssh_hold hold-frank frank
# (sshd pads its retitled argv with spaces)
cmdline=$(tr '\0' ' ' <"/proc/$PRIV/cmdline" | sed 's/ *$//')
phi_assert_eq "$cmdline" "sshd: frank [priv]" \
    "the session's process (PHI_PID) is the connection's privileged sshd, 'sshd: frank [priv]'"
row=$(access_sessions_json | jq -c --arg id "$SID" '.[] | select(.session == $id)')
phi_assert_eq "$(jq -r '[.user, .service, .rhost, .tty, .pid] | @tsv' <<<"$row")" \
    "frank	sshd	127.0.0.1	ssh	$PRIV" "phictl sessions lists frank's session with that process"
phi_assert_match "$(access_ctl sessions)" "frank +sshd +127\.0\.0\.1 +ssh +$PRIV +$SID" "in its table too"
cur=$(phi_journal_cursor)
kill -KILL "$PRIV"
closed=$(phi_journal_wait --first --timeout 10 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=session_close \
    "PHI_SESSION=$SID") || phi_fail "the daemon did not close the session of the killed sshd"
phi_assert_eq "$(jfield "$closed" PHI_REASON)" process_exited "session_close says why: process_exited"
phi_assert_eq "$(jfield "$closed" PHI_ACTOR)" phiaccessd "and that phiaccessd closed it"
phi_assert_eq "$(jfield "$closed" PHI_USER)/$(jfield "$closed" PHI_SERVICE)/$(jfield "$closed" PHI_RHOST)" \
    frank/sshd/127.0.0.1 "with what the row recorded: user, service, client"
phi_assert_eq "$(jfield "$closed" PRIORITY)" 5 "at notice priority"
phi_check "phictl sessions no longer lists it" access_session_unlisted "$SID"
phi_stop_pid "$HOLD_PID"

# Killed while the daemon is down: closed when it starts again.
ssh_hold hold-gina gina
phi_check "gina's session is listed" access_session_listed "$SID"
totp_daemon_stop
kill -KILL "$PRIV"
gone() { ! kill -0 "$1" 2>/dev/null; }   # not our child: its parent sshd reaps it
phi_wait_for --timeout 5 --what "gina's sshd gone" gone "$PRIV" || true
cur=$(phi_journal_cursor)
access_daemon_start
closed=$(phi_journal_wait --first --timeout 10 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=session_close \
    "PHI_SESSION=$SID") || phi_fail "the restarted daemon did not close the session of the sshd killed meanwhile"
phi_assert_eq "$(jfield "$closed" PHI_REASON)/$(jfield "$closed" PHI_ACTOR)" process_gone/phiaccessd \
    "closed at start: process_gone, by phiaccessd"
phi_check "phictl sessions no longer lists it" access_session_unlisted "$SID"
phi_stop_pid "$HOLD_PID"

# ---------------------------------------------------------------- daemon stopped
totp_daemon_stop
cur=$(phi_journal_cursor)
step=$(totp_fresh_step alice)
ssh_login "$KBD_PORT" alice "$(totp_code alice "$step")"
expect_out "daemon stopped: alice with a right code"
ssh_login "$PK_PORT" erin "" "$SSH_DIR/id_erin"
# After a key, sshd ends a connection that account refuses (no "Permission denied").
phi_assert_eq "$LOGIN_RC" 255 "daemon stopped: erin with her key (account alone decides): ssh exits 255"
phi_assert_not_contains "$LOGIN_OUT" "LOGGED-IN-AS" "no command output"
phi_wait_for --timeout 5 --what "sshd's account refusal" \
    sshd_said_has "$cur" "Access denied for user erin by PAM account configuration" || true
phi_assert_contains "$(sshd_said "$cur")" "Access denied for user erin by PAM account configuration" \
    "sshd journals that PAM account refused erin"
phi_wait_for --timeout 5 --what "pam_phi's account complaint" \
    sshd_said_has "$cur" "pam_phi(sshd:account): cannot reach phiaccessd" || true
phi_assert_contains "$(sshd_said "$cur")" "pam_phi(sshd:account): cannot reach phiaccessd" \
    "pam_phi's account type in sshd says the daemon is unreachable"
policy_check erin sshd
phi_assert_ne "$PC_RC" 0 "phictl policy check does not say allowed either (exit $PC_RC)"

phi_assert_eq "$(access_san_reports)" "" "no sanitizer report from pam_phi or nss_phi inside sshd"

#!/usr/bin/env bash
# TOTP two-factor at a real SSH login: OpenSSH's sshd on 127.0.0.1 (private
# network namespace) with UsePAM and the PAM service "sshd" bound to a stack
# with pam_phi, against the real phiaccessd; an ssh client driven by expect
# types codes computed by oathtool. Cases: keyboard-interactive alone (right
# code in, wrong code out), publickey,keyboard-interactive (key and right code
# in; key and wrong code, no key, or a key not authorized: out), a code reused
# for a second login (out), enrolment at login (key, then the QR code on the
# client's screen and the new token's first code: in), and the daemon stopped
# (out, and the same code works once it is back). Every outcome is checked in
# the journal too.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"
SSHD=/usr/sbin/sshd
[ -x "$SSHD" ] || phi_die "sshd is missing (openssh-server); run ./scripts/setup"
command -v ssh >/dev/null || phi_die "ssh is missing (openssh-client); run ./scripts/setup"
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so
[ -r "$PAM_PHI" ] || phi_die "build the tree first ($PAM_PHI)"

# Enrolment at login is on for the daemon; only the "enrol" sshd's stack has
# pam_phi's enroll option.
TOTP_EXTRA_CONFIG="enroll_at_login = yes"
totp_setup
totp_daemon_start

# ---------------------------------------------------------------- sshd
SSH_DIR=$PHI_TMP/ssh
mkdir -p "$SSH_DIR"
# Privilege separation: sshd wants /run/sshd (root's, not writable by others).
phi_private_dir /run/sshd

# Users sshd can resolve: the host's passwd (sshd's own privsep user is in it)
# with the TOTP test users right after root, so that uid -> name finds them
# first. It is bound over /etc/passwd only in sshd's mount namespace.
{
    grep '^root:' /etc/passwd
    grep -v '^root:' "$TOTP_DIR/passwd"
    grep -v -E "^(root|$(IFS='|'; echo "${TOTP_USERS[*]}")):" /etc/passwd || true
} >"$SSH_DIR/passwd"
chmod 0644 "$SSH_DIR/passwd"
for u in "${TOTP_USERS[@]}"; do
    mkdir -p "$PHI_TMP/home/$u/.ssh"
    chmod 0755 "$PHI_TMP/home" "$PHI_TMP/home/$u"
    chmod 0700 "$PHI_TMP/home/$u/.ssh"
    chown -R "${TOTP_UID[$u]}:${TOTP_UID[$u]}" "$PHI_TMP/home/$u"
done

ssh-keygen -q -t ed25519 -N '' -C phi-test-host -f "$SSH_DIR/host_key"
ssh-keygen -q -t ed25519 -N '' -C bob -f "$SSH_DIR/id_bob"
ssh-keygen -q -t ed25519 -N '' -C stranger -f "$SSH_DIR/id_other"
install -m 0600 -o "${TOTP_UID[bob]}" -g "${TOTP_UID[bob]}" "$SSH_DIR/id_bob.pub" \
    "$PHI_TMP/home/bob/.ssh/authorized_keys"
ssh-keygen -q -t ed25519 -N '' -C frank -f "$SSH_DIR/id_frank"
install -m 0600 -o "${TOTP_UID[frank]}" -g "${TOTP_UID[frank]}" "$SSH_DIR/id_frank.pub" \
    "$PHI_TMP/home/frank/.ssh/authorized_keys"

# The PAM stack the README shows: pam_phi asks for the code; nothing else
# authenticates. account and session are plain so that only auth is tested.
totp_stack sshd "auth required $PAM_PHI" \
    "account required pam_permit.so" \
    "session required pam_permit.so" \
    "password required pam_deny.so"
# Where first-time users enrol at login: behind a public key (pam_phi(8)).
totp_stack sshd-enrol "auth required $PAM_PHI enroll" \
    "account required pam_permit.so" \
    "session required pam_permit.so" \
    "password required pam_deny.so"

# The sanitizer build's module needs its runtimes loaded first in sshd (as
# nss_lib.bash does for getent); leak reports from sshd itself are not ours.
# Reports go to files, checked at the end: an abort in a refusing path would
# otherwise look like the refusal itself.
SSHD_ENV=()
san=$(ldd "$PAM_PHI" | awk '/libasan|libubsan/ { printf "%s%s", sep, $3; sep = " " }')
if [ -n "$san" ]; then
    SSHD_ENV=(env "LD_PRELOAD=$san"
        "ASAN_OPTIONS=detect_leaks=0:log_path=$SSH_DIR/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
        "UBSAN_OPTIONS=print_stacktrace=1:log_path=$SSH_DIR/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}")
fi

# sshd_start NAME PORT METHODS [STACK]: an sshd on 127.0.0.1:PORT (the test's
# own network namespace: a fixed port is free) requiring AuthenticationMethods
# METHODS. Its PAM service is "sshd" (the basename of argv[0]), whose file is
# our stack STACK (default sshd) in sshd's own mount namespace.
sshd_start() {
    local name=$1 port=$2 methods=$3 stack=${4:-sshd} conf pidfile
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
    phi_spawn "sshd-$name" phi_ns_run --bind "$SSH_DIR/passwd:/etc/passwd" \
        --bind "$TOTP_DIR/pam.d/$stack:/etc/pam.d/sshd" -- \
        "${SSHD_ENV[@]}" "$SSHD" -D -f "$conf"
    # sshd writes its pid file once it listens.
    phi_wait_for --timeout 15 --what "sshd $name pid file" test -s "$pidfile" ||
        phi_die "sshd ($name) did not start; its log:"$'\n'"$(tail -n 30 "$PHI_TMP/sshd-$name.log")"
    printf '[127.0.0.1]:%s %s\n' "$port" "$(cat "$SSH_DIR/host_key.pub")" >>"$SSH_DIR/known_hosts"
    if [ -n "$san" ]; then
        phi_assert_contains "$(cat "/proc/$(cat "$pidfile")/maps")" libasan \
            "sshd ($name) runs with the sanitizer runtimes that pam_phi needs"
    fi
}
KBD_PORT=2222
PK_PORT=2223
sshd_start kbd "$KBD_PORT" keyboard-interactive
sshd_start pk "$PK_PORT" publickey,keyboard-interactive
ENROL_PORT=2224
sshd_start enrol "$ENROL_PORT" publickey,keyboard-interactive sshd-enrol

# The client: a pty driven by expect, answering each code prompt with the next
# of the codes given (the client gives up when they are used up). Output and ssh's exit status come
# back in LOGIN_OUT (carriage returns removed) and LOGIN_RC; LOGIN_PROMPT is
# the prompt line as the user saw it.
cat >"$SSH_DIR/login.exp" <<'EXP'
set timeout 30
lassign $argv port user codes key known_hosts
# One code per prompt; the client asks no more often than it has codes.
set codes [split $codes ,]
set opts [list -F /dev/null -p $port -o UserKnownHostsFile=$known_hosts \
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentityAgent=none \
    -o IdentitiesOnly=yes -o NumberOfPasswordPrompts=[llength $codes] -o ConnectTimeout=10 \
    -o PreferredAuthentications=publickey,keyboard-interactive]
if {$key eq ""} {
    lappend opts -o PubkeyAuthentication=no
} else {
    lappend opts -i $key
}
set prompts 0
spawn -noecho ssh {*}$opts $user@127.0.0.1 {echo LOGGED-IN-AS-$(id -un)}
expect {
    -re {[^\r\n]*Verification code: } {
        puts "\nEXPECT-PROMPT: $expect_out(0,string)"
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

# ssh_login PORT USER CODE[,CODE...] [KEY]
ssh_login() {
    local port=$1 user=$2 code=$3 key=${4:-}
    LOGIN_RC=0
    LOGIN_OUT=$(timeout 60 expect -f "$SSH_DIR/login.exp" -- "$port" "$user" "$code" "$key" \
        "$SSH_DIR/known_hosts" 2>&1) || LOGIN_RC=$?
    LOGIN_OUT=${LOGIN_OUT//$'\r'/}
    LOGIN_PROMPT=$(printf '%s\n' "$LOGIN_OUT" | sed -n 's/^EXPECT-PROMPT: //p' | sed -n 1p)
    LOGIN_PROMPTS=$(printf '%s\n' "$LOGIN_OUT" | sed -n 's/^EXPECT-PROMPTS: //p')
}

# expect_in USER WHAT: the last login got in, as USER, after one code prompt.
expect_in() {
    local user=$1 what=$2
    phi_assert_eq "$LOGIN_RC" 0 "$what: ssh exits 0"
    phi_assert_contains "$LOGIN_OUT" "LOGGED-IN-AS-$user" "$what: the command ran as $user"
}

# expect_out WHAT PROMPTS: the last login was refused, after PROMPTS prompts.
expect_out() {
    local what=$1 prompts=$2
    phi_assert_eq "$LOGIN_RC" 255 "$what: ssh exits 255 (refused)"
    phi_assert_not_contains "$LOGIN_OUT" "LOGGED-IN-AS" "$what: no command output"
    phi_assert_contains "$LOGIN_OUT" "Permission denied" "$what: ssh says permission denied"
    phi_assert_eq "$LOGIN_PROMPTS" "$prompts" "$what: $prompts code prompt(s)"
}

event() { # CURSOR EVENT USER: the daemon's journal entries for it (waits up to 5 s)
    phi_journal_wait --timeout 5 --after "$1" SYSLOG_IDENTIFIER=phiaccessd "PHI_EVENT=$2" "PHI_USER=$3"
}
field() { # JSON FIELD
    printf '%s\n' "$1" | sed -n 1p | phi_json_field "$2"
}
sshd_said() { # CURSOR: MESSAGEs sshd (and the PAM modules in it) journaled since CURSOR
    phi_journal_json --after "$1" SYSLOG_IDENTIFIER=sshd | phi_json_field MESSAGE
}
sshd_said_has() { # CURSOR TEXT
    [[ "$(sshd_said "$1")" == *"$2"* ]]
}
# check_event EV EVENT: the event names sshd's PAM service, the client's
# address and the tty sshd gives PAM.
check_event() {
    phi_assert_eq "$(field "$1" PHI_SERVICE)" sshd "$2 names the PAM service sshd"
    phi_assert_eq "$(field "$1" PHI_RHOST)" 127.0.0.1 "$2 names the client's address"
    phi_assert_eq "$(field "$1" PHI_TTY)" ssh "$2 names the tty sshd sets"
}

for u in alice bob carol dave erin; do
    totp_enroll "$u"
done

# ---------------------------------------------------------------- keyboard-interactive
cur=$(phi_journal_cursor)
step=$(totp_fresh_step alice)
ssh_login "$KBD_PORT" alice "$(totp_code alice "$step")"
expect_in alice "keyboard-interactive, right code"
TOTP_LAST[alice]=$step
phi_assert_eq "$LOGIN_PROMPTS" 1 "keyboard-interactive: one code prompt"
phi_assert_eq "$LOGIN_PROMPT" "(alice@127.0.0.1) Verification code: " \
    "the prompt is pam_phi's 'Verification code: ' (ssh puts user@host before it)"
ev=$(event "$cur" auth_ok alice)
check_event "$ev" auth_ok
phi_assert_contains "$(sshd_said "$cur")" "Accepted keyboard-interactive/pam for alice from 127.0.0.1" \
    "sshd journals the keyboard-interactive/pam login"

cur=$(phi_journal_cursor)
ssh_login "$KBD_PORT" alice "$(totp_code alice $((step + 7)))"
expect_out "keyboard-interactive, wrong code" 1
ev=$(event "$cur" auth_fail alice)
check_event "$ev" auth_fail
phi_assert_eq "$(field "$ev" PHI_REASON)" wrong_code "auth_fail says wrong_code"
phi_assert_contains "$(sshd_said "$cur")" "Failed keyboard-interactive/pam for alice from 127.0.0.1" \
    "sshd journals the failed keyboard-interactive/pam attempt"
phi_assert_eq "$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok | wc -l)" 0 \
    "no auth_ok after the wrong code"

# A mistyped code, then the right one, in one connection: sshd runs the PAM
# stack again on the same handle.
cur=$(phi_journal_cursor)
step=$(totp_fresh_step erin)
ssh_login "$KBD_PORT" erin "$(totp_code erin $((step + 7))),$(totp_code erin "$step")"
expect_in erin "keyboard-interactive, a wrong code and then the right one"
TOTP_LAST[erin]=$step
phi_assert_eq "$LOGIN_PROMPTS" 2 "the code is asked for again after the wrong one"
phi_assert_eq "$(field "$(event "$cur" auth_fail erin)" PHI_REASON)" wrong_code "the first try is an auth_fail"
check_event "$(event "$cur" auth_ok erin)" auth_ok

# ---------------------------------------------------------------- publickey,keyboard-interactive
# Without the key the code is never asked for: the right code cannot replace it.
cur=$(phi_journal_cursor)
step=$(totp_fresh_step bob)
code=$(totp_code bob "$step")
ssh_login "$PK_PORT" bob "$code"
expect_out "publickey,keyboard-interactive: no key, right code" 0
ssh_login "$PK_PORT" bob "$code" "$SSH_DIR/id_other"
expect_out "publickey,keyboard-interactive: a key not authorized, right code" 0
phi_assert_eq "$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_USER=bob | wc -l)" 0 \
    "without the key pam_phi is never reached (no event for bob)"

# The same code (still unused) with the key.
cur=$(phi_journal_cursor)
ssh_login "$PK_PORT" bob "$code" "$SSH_DIR/id_bob"
expect_in bob "publickey,keyboard-interactive: key and right code"
TOTP_LAST[bob]=$step
phi_assert_eq "$LOGIN_PROMPTS" 1 "publickey,keyboard-interactive: one code prompt after the key"
check_event "$(event "$cur" auth_ok bob)" auth_ok
said=$(sshd_said "$cur")
phi_assert_contains "$said" "Partial publickey for bob from 127.0.0.1" \
    "sshd journals the key as the first (partial) method"
phi_assert_contains "$said" "Accepted keyboard-interactive/pam for bob from 127.0.0.1" "and then the code"

cur=$(phi_journal_cursor)
ssh_login "$PK_PORT" bob "$(totp_code bob $((step + 7)))" "$SSH_DIR/id_bob"
expect_out "publickey,keyboard-interactive: key and wrong code" 1
phi_assert_eq "$(field "$(event "$cur" auth_fail bob)" PHI_REASON)" wrong_code "auth_fail says wrong_code"

# ---------------------------------------------------------------- replay
cur=$(phi_journal_cursor)
step=$(totp_fresh_step carol)
code=$(totp_code carol "$step")
ssh_login "$KBD_PORT" carol "$code"
expect_in carol "first login with a code"
TOTP_LAST[carol]=$step
ssh_login "$KBD_PORT" carol "$code"
expect_out "a second login with the same code" 1
check_event "$(event "$cur" totp_replay carol)" totp_replay
phi_assert_eq "$(event "$cur" auth_ok carol | wc -l)" 1 "exactly one auth_ok for the code"

# ---------------------------------------------------------------- enrolment at login
# frank has a key and a ticket but no token. What the person does: Enter at
# the first prompt, scan what appears, type the app's code. The expect script
# reads the secret from the URI on the screen, as the app would from the QR.
cat >"$SSH_DIR/enrol.exp" <<'EXP'
set timeout 30
lassign $argv port user key known_hosts step_file
spawn -noecho ssh -F /dev/null -p $port -o UserKnownHostsFile=$known_hosts \
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentityAgent=none \
    -o IdentitiesOnly=yes -o ConnectTimeout=10 -i $key \
    -o PreferredAuthentications=publickey,keyboard-interactive $user@127.0.0.1 {echo LOGGED-IN-AS-$(id -un)}
expect {
    -re {Verification code: } { send "\r" }
    timeout { puts "\nEXPECT: no first prompt"; exit 124 }
}
expect {
    -re {secret=([A-Z2-7]+)} { set secret $expect_out(1,string) }
    timeout { puts "\nEXPECT: no token shown"; exit 124 }
    eof { puts "\nEXPECT: no token shown"; exit 1 }
}
expect {
    -re {Verification code: } {}
    timeout { puts "\nEXPECT: no prompt after the token"; exit 124 }
}
set step [expr {[clock seconds] / 30}]
send -- "[exec oathtool --totp -b $secret -N @[expr {$step * 30}]]\r"
set f [open $step_file w]; puts $f $step; close $f
expect {
    timeout { puts "\nEXPECT: timed out"; exit 124 }
    eof {}
}
exit [lindex [wait] 3]
EXP
totp_phictl_as root totp issue frank --expires 1h >/dev/null
cur=$(phi_journal_cursor)
LOGIN_RC=0
LOGIN_OUT=$(timeout 60 expect -f "$SSH_DIR/enrol.exp" -- "$ENROL_PORT" frank "$SSH_DIR/id_frank" \
    "$SSH_DIR/known_hosts" "$TOTP_DIR/step.frank" 2>&1) || LOGIN_RC=$?
LOGIN_OUT=${LOGIN_OUT//$'\r'/}
expect_in frank "enrolment at an ssh login: key, Enter, then the new token's first code"
phi_assert_contains "$LOGIN_OUT" "No verification token is set up for frank yet" "ssh shows why a QR code follows"
printf '%s\n' "$LOGIN_OUT" >"$SSH_DIR/enrol.transcript"
uri=$(grep -o 'otpauth://totp/[^ ]*' "$SSH_DIR/enrol.transcript" | sed -n 1p)
phi_assert_eq "$(totp_qr_decode "$SSH_DIR/enrol.transcript")" "$uri" \
    "the QR code on the ssh client's screen scans to the URI shown"
check_event "$(event "$cur" enrolled frank)" enrolled
phi_assert_contains "$(sshd_said "$cur")" "Accepted keyboard-interactive/pam for frank from 127.0.0.1" \
    "sshd journals the login that enrolled"
printf '%s\n' "$uri" | grep -o 'secret=[A-Z2-7]*' | cut -d= -f2 >"$TOTP_DIR/secret.frank"
TOTP_LAST[frank]=$(cat "$TOTP_DIR/step.frank")
step=$(totp_fresh_step frank)
ssh_login "$PK_PORT" frank "$(totp_code frank "$step")" "$SSH_DIR/id_frank"
expect_in frank "the enrolled token's next code logs in where enrolment is not offered"
TOTP_LAST[frank]=$step

# ---------------------------------------------------------------- daemon down
totp_daemon_stop
cur=$(phi_journal_cursor)
step=$(totp_fresh_step dave)
code=$(totp_code dave "$step")
ssh_login "$KBD_PORT" dave "$code"
expect_out "daemon stopped, right code" 1
phi_wait_for --timeout 5 --what "pam_phi's complaint in the journal" \
    sshd_said_has "$cur" "pam_phi(sshd:auth): cannot reach phiaccessd" || true
phi_assert_contains "$(sshd_said "$cur")" "pam_phi(sshd:auth): cannot reach phiaccessd" \
    "pam_phi in sshd journals that the daemon is unreachable"
totp_daemon_start
ssh_login "$KBD_PORT" dave "$code"
expect_in dave "the daemon back: the same code logs in (the refusal was the daemon's absence)"
TOTP_LAST[dave]=$step

# ---------------------------------------------------------------- sanitizers
if [ -n "$san" ]; then
    reports=$(cat "$SSH_DIR"/asan.* "$SSH_DIR"/ubsan.* 2>/dev/null || true)
    phi_assert_eq "$reports" "" "no sanitizer report from pam_phi inside sshd"
fi

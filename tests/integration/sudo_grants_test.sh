#!/usr/bin/env bash
# Real sudo (setuid, run by unprivileged test users) against the daemon, with
# sudo_phi's approval and audit plugins and pam_phi in sudo's PAM stack, all
# bound over /etc inside the test's mount namespace. alice is refused before
# a grant; runs a command after bob approves; is refused again after a revoke
# and after an expiry, both inside sudo's timestamp window (sudo -n, no code
# asked); carol's NOPASSWD rule with pam_acct_mgmt and pam_session off is
# refused by either plugin alone and runs only with neither; each attempt is
# journaled with its command line, run-as user and cwd. A `sudo -u dbsvc
# sleep 600` started under a 5-second grant is ended when the grant expires,
# and another when its grant is revoked (session_ended, the process gone).
# The daemon runs with an empty capability set, as its unit does.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so
SUDO_PHI=$PHI_BUILD_DIR/sudo_phi/sudo_phi.so
SUDO=$(command -v sudo) || phi_die "sudo is missing; run ./scripts/setup"
[ -u "$SUDO" ] || phi_die "$SUDO is not setuid root"

totp_setup
cat >>"$TOTP_DIR/group" <<'GROUPS'
dba-oncall:x:3100:alice
dba-approvers:x:3101:bob
phi-dba:x:3102:
GROUPS
POLICY=$TOTP_DIR/policy.conf
cat >"$POLICY" <<'POLICY'
[access:sudo]
action = allow
users = *
services = sudo
hosts = *

[role:dba]
grant_group = phi-dba
eligible_groups = dba-oncall
approver_groups = dba-approvers
approvals = 1
max_duration = 4h
reason_required = no
approver_totp = no
hosts = *
POLICY
chmod 0644 "$POLICY"
sed -i "/^\[daemon\]/a policy = $POLICY" "$TOTP_CONF"

# ------------------------------------------------- /etc for sudo, this test only
# The host's accounts plus the test users and dbsvc, the run-as target.
ETC=$PHI_TMP/etc
mkdir -p "$ETC" "$PHI_TMP/home"
{
    cat /etc/passwd
    grep -v '^root:' "$TOTP_DIR/passwd"
    echo "dbsvc:x:2100:2100:db service:/nonexistent:/bin/sh"
} >"$ETC/passwd"
{
    cat /etc/group
    grep -v -e '^root:' -e '^phi-admins:' "$TOTP_DIR/group"
    for u in "${TOTP_USERS[@]}"; do echo "$u:x:${TOTP_UID[$u]}:"; done
    echo "dbsvc:x:2100:"
} >"$ETC/group"
# sudo's own stack: the code (pam_phi auth), then the grant on every call
# (account elevate), and the session tied to the grant (session elevate).
cat >"$ETC/pam.sudo" <<PAM
auth     required $PAM_PHI
account  required $PAM_PHI elevate
session  required $PAM_PHI elevate
PAM
# timestamp_type=global: one window for every call of the test (there is no
# tty to key it to); 5 minutes, longer than the test.
cat >"$ETC/sudoers" <<'SUDOERS'
Defaults env_reset, !lecture, timestamp_type=global, timestamp_timeout=5, passwd_tries=1
alice ALL=(ALL) ALL
carol ALL=(ALL) NOPASSWD: ALL
Defaults:carol !pam_acct_mgmt, !pam_session
SUDOERS
chmod 0440 "$ETC/sudoers"
visudo -c -f "$ETC/sudoers" >/dev/null || phi_die "the test's sudoers does not parse"
sudo_conf() { # PLUGINS...: approval, audit (none: sudoers alone)
    {
        # Group memberships read at each call: a grant's group ends with it.
        echo "Set group_source dynamic"
        echo "Plugin sudoers_policy sudoers.so"
        echo "Plugin sudoers_io sudoers.so"
        echo "Plugin sudoers_audit sudoers.so"
        for p in "$@"; do
            echo "Plugin sudo_phi_$p $SUDO_PHI"
        done
    } >"$ETC/sudo.conf"
}
sudo_conf approval audit
chmod 0644 "$ETC/sudo.conf" "$ETC/passwd" "$ETC/group"
# The sanitizer build's modules need their runtimes loaded first in sudo,
# which, being setuid, ignores LD_PRELOAD but not /etc/ld.so.preload: an
# empty one for the test (in an overlay of /etc, the test's alone), and the
# runtimes bound over it in a mount namespace of each sudo call's own. Leak
# reports would be sudo's, not ours; the others are read at the end.
SAN_LIBS=$(ldd "$PAM_PHI" | awk '/libasan|libubsan/ { print $3 }')
SUDO_NS=()
if [ -n "$SAN_LIBS" ]; then
    _phi_overlay /etc
    : >/etc/ld.so.preload
    printf '%s\n' "$SAN_LIBS" >"$PHI_TMP/ld.so.preload"
    mkdir -p "$PHI_TMP/san"
    chmod 0755 "$PHI_TMP/san"
    # shellcheck disable=SC2016 # expanded by sh
    SUDO_NS=(env "ASAN_OPTIONS=detect_leaks=0:log_path=$PHI_TMP/san/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
        "UBSAN_OPTIONS=print_stacktrace=1:log_path=$PHI_TMP/san/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
        unshare --mount --propagation private -- sh -c 'mount --bind "$0" /etc/ld.so.preload && exec "$@"'
        "$PHI_TMP/ld.so.preload")
fi
# The mount namespace is the test's own: these binds vanish with it.
mount --bind "$ETC/passwd" /etc/passwd
mount --bind "$ETC/group" /etc/group
mount --bind "$ETC/sudoers" /etc/sudoers
mount --bind "$ETC/sudo.conf" /etc/sudo.conf
mount --bind "$ETC/pam.sudo" /etc/pam.d/sudo
phi_private_dir /run/sudo
phi_private_dir /var/lib/sudo

# The daemon with no capability at all: ending a sudo session must work as
# plain uid 0 (kill(2) checks uids: sudo's saved set-user-ID is 0).
daemon_start() {
    phi_spawn phiaccessd setpriv --bounding-set=-all --inh-caps=-all -- \
        "$PHI_BUILD_DIR/phiaccessd/phiaccessd" --config "$TOTP_CONF"
    TOTP_DAEMON_PID=$PHI_LAST_PID
    phi_wait_for --timeout 15 --what "phiaccessd socket" test -S "$TOTP_SOCKET" || phi_die "phiaccessd did not start"
}
daemon_start
phi_assert_eq "$(sed -n 's/^CapEff:[[:space:]]*//p' "/proc/$TOTP_DAEMON_PID/status")" 0000000000000000 \
    "the daemon runs with no effective capability"
for u in alice bob; do totp_enroll "$u"; done

ctl() { # USER ARGS...: phictl as USER; output in OUT, status in RC
    RC=0
    OUT=$(totp_phictl_as "$@" 2>&1) || RC=$?
}
pair() { # KEY: its value in OUT
    sed -n "s/^$1  *//p" <<<"$OUT" | sed -n 1p
}
field() { # JSON FIELD
    phi_json_field "$2" <<<"$1"
}
as_user() { # USER CMD...: CMD with USER's uid, gid and groups, in $PHI_TMP/home; one pid throughout (exec)
    local u=$1
    shift
    "${SUDO_NS[@]}" env -C "$PHI_TMP/home" setpriv --reuid="${TOTP_UID[$u]}" --regid="${TOTP_UID[$u]}" \
        --init-groups -- "$@"
}
run_sudo() { # USER ARGS...: sudo as USER, stdin from the caller; output in OUT, status in RC
    local u=$1
    shift
    RC=0
    OUT=$(as_user "$u" timeout 20 "$SUDO" "$@" 2>&1) || RC=$?
}
sudo_with_code() { # USER ARGS...: sudo -S, answering the code prompt with a fresh code
    local u=$1 step
    shift
    step=$(totp_fresh_step "$u")
    run_sudo "$u" -S -p "" "$@" <<<"$(totp_code "$u" "$step")"
    # Used up whether or not the command then ran (the account check follows).
    TOTP_LAST[$u]=$step
}
grant() { # DURATION: alice asks for dba, bob approves; the id in GRANT
    ctl alice request dba --for "$1" --reason "sudo_grants test"
    phi_assert_eq "$RC" 0 "alice asks for dba for $1" "$OUT"
    GRANT=$(pair id)
    ctl bob approve "$GRANT"
    phi_assert_eq "$RC" 0 "bob approves $GRANT" "$OUT"
    phi_assert_eq "$(pair state)" active "the grant is active"
}
sudo_event() { # CURSOR EVENT FIELD=VALUE...: the first such entry of sudo_phi's (it has PHI_STAGE)
    local cursor=$1 ev=$2
    shift 2
    phi_journal_wait --first --timeout 10 --after "$cursor" SYSLOG_IDENTIFIER=phiaccessd "PHI_EVENT=$ev" "$@"
}
gone() { # PID: the process has ended (a zombie counts: it runs nothing)
    ! _phi_alive "$1"
}

# --------------------------------------------------------------- no grant
cursor=$(phi_journal_cursor)
sudo_with_code alice -u dbsvc /usr/bin/id -un
phi_assert_eq "$RC" 1 "without a grant alice's sudo is refused" "$OUT"
phi_assert_not_contains "$OUT" dbsvc "and the command did not run"
e=$(phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=sudo_denied PHI_USER=alice) ||
    phi_fail "the refusal is journaled as sudo_denied"
# pam_phi's account check refused it; sudo reports that to the audit plugin,
# which records the command.
e=$(sudo_event "$cursor" sudo_denied PHI_USER=alice "PHI_COMMAND=/usr/bin/id -un") ||
    phi_fail "the refused attempt is recorded with its command by the audit plugin"
phi_assert_match "$(field "$e" PHI_STAGE)" '^(reject|error)$' "as sudo's own refusal"
phi_assert_eq "$(field "$e" PHI_TARGET_USER)" dbsvc "sudo_denied: PHI_TARGET_USER"

# ---------------------------------------------------- a grant: it runs
grant 1h
first=$GRANT
cursor=$(phi_journal_cursor)
sudo_with_code alice -u dbsvc /usr/bin/id -un
phi_assert_eq "$RC" 0 "with the grant alice's sudo runs" "$OUT"
phi_assert_eq "$OUT" dbsvc "as dbsvc"
e=$(sudo_event "$cursor" sudo_escalation PHI_STAGE=accept PHI_USER=alice) ||
    phi_fail "the audit plugin records the command as sudo_escalation"
phi_assert_eq "$(field "$e" PHI_COMMAND)" "/usr/bin/id -un" "sudo_escalation: PHI_COMMAND"
phi_assert_eq "$(field "$e" PHI_TARGET_USER)" dbsvc "sudo_escalation: PHI_TARGET_USER"
phi_assert_eq "$(field "$e" PHI_CWD)" "$PHI_TMP/home" "sudo_escalation: PHI_CWD"
phi_assert_eq "$(field "$e" PHI_ROLE)" dba "sudo_escalation: PHI_ROLE"
phi_assert_eq "$(field "$e" PHI_REQUEST_ID)" "$first" "sudo_escalation: PHI_REQUEST_ID"

# Inside the timestamp window: no code asked (-n would fail if one were).
run_sudo alice -n -u dbsvc /usr/bin/id -un </dev/null
phi_assert_eq "$RC" 0 "a second sudo inside the timestamp window runs without a code" "$OUT"
phi_assert_eq "$OUT" dbsvc "as dbsvc"
cursor=$(phi_journal_cursor)
run_sudo alice -n -u dbsvc /bin/echo 'two words' "tab	and \\ slash" </dev/null
e=$(sudo_event "$cursor" sudo_escalation PHI_STAGE=accept PHI_USER=alice) || phi_fail "recorded again"
phi_assert_eq "$(field "$e" PHI_COMMAND)" '/bin/echo two words tab\x09and \\ slash' \
    "control bytes and backslashes in the command line are escaped in the record"
# The audit log has each command too: a request's life shows what was run.
ctl root audit request "$first" --format json
phi_assert_eq "$RC" 0 "the request's life is queried" "$OUT"
phi_assert_eq "$(jq -r '[.[] | select(.command != null) | .target + " " + .command] | join("|")' <<<"$OUT")" \
    'dbsvc /usr/bin/id -un|dbsvc /usr/bin/id -un|dbsvc /bin/echo two words tab\x09and \\ slash' \
    "audit request: each sudo use with the command and the user it ran as"

# ------------------------------------------ revoked: refused at once, in the window
ctl alice revoke "$first" --reason "done"
phi_assert_eq "$RC" 0 "alice ends her grant" "$OUT"
cursor=$(phi_journal_cursor)
run_sudo alice -n -u dbsvc /usr/bin/id -un </dev/null
phi_assert_eq "$RC" 1 "after the revoke, sudo is refused inside the timestamp window" "$OUT"
phi_assert_contains "$OUT" "account management error: Permission denied" \
    "by pam_phi's account check, which sudo calls even inside the window"
phi_assert_not_contains "$OUT" dbsvc "the command did not run"
phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=sudo_denied PHI_USER=alice >/dev/null ||
    phi_fail "journaled as sudo_denied"
sudo_event "$cursor" sudo_denied PHI_USER=alice "PHI_COMMAND=/usr/bin/id -un" >/dev/null ||
    phi_fail "with the command"

# ------------------------------------- a 5-second grant ends the sudo it opened
grant 5s
short=$GRANT
cursor=$(phi_journal_cursor)
phi_spawn sudo-sleep-expire "${SUDO_NS[@]}" env -C "$PHI_TMP/home" setpriv --reuid="${TOTP_UID[alice]}" \
    --regid="${TOTP_UID[alice]}" --init-groups -- "$SUDO" -n -u dbsvc /bin/sleep 600
sleeper=$PHI_LAST_PID
phi_wait_for --timeout 10 --what "sleep 600 under sudo" pgrep -u dbsvc -x sleep ||
    phi_fail "sudo -u dbsvc sleep 600 runs under the 5-second grant" "$(cat "$PHI_TMP/sudo-sleep-expire.log")"
if [ -n "$SAN_LIBS" ]; then
    phi_assert_contains "$(cat "/proc/$sleeper/maps")" libasan "sudo runs with the sanitizer runtimes the modules need"
fi
e=$(phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=session_open PHI_REQUEST_ID="$short") ||
    phi_fail "sudo's session is recorded under the grant"
phi_assert_eq "$(field "$e" PHI_USER)" dbsvc "session_open: the session is dbsvc's (PAM_USER)"
e=$(phi_journal_wait --first --timeout 20 --after "$cursor" PHI_EVENT=session_ended PHI_REQUEST_ID="$short") ||
    phi_fail "the session is ended when the grant expires"
phi_assert_eq "$(field "$e" PHI_REASON)" grant_expired "session_ended: PHI_REASON"
phi_assert_eq "$(field "$e" PHI_USER)" alice "session_ended: PHI_USER, the grant's holder"
phi_assert_eq "$(field "$e" PHI_TARGET_USER)" dbsvc "session_ended: PHI_TARGET_USER"
phi_assert_eq "$(field "$e" PHI_SIGNAL)" SIGTERM "session_ended: PHI_SIGNAL"
phi_wait_for --timeout 10 --what "sudo ended" gone "$sleeper" || phi_fail "sudo has ended"
phi_wait_for --timeout 5 --what "sleep ended" bash -c '! pgrep -u dbsvc -x sleep' ||
    phi_fail "the command sudo ran has ended too"
phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=session_close "PHI_PID=$sleeper" >/dev/null ||
    phi_fail "and its session is closed"
# Refused after the expiry, still inside the window.
run_sudo alice -n -u dbsvc /usr/bin/id -un </dev/null
phi_assert_eq "$RC" 1 "after the expiry, sudo is refused inside the timestamp window" "$OUT"
sudo_event "$cursor" sudo_denied PHI_USER=alice "PHI_COMMAND=/usr/bin/id -un" >/dev/null ||
    phi_fail "the refusal after the expiry is recorded with the command"
phi_assert_contains "$OUT" "account management error: Permission denied" \
    "by pam_phi's account check, which sudo calls even inside the window"

# ------------------- a grant that ends while the daemon is stopped, at its start
# 8 s: long enough that the daemon is surely stopped before it ends.
grant 8s
down=$GRANT
cursor=$(phi_journal_cursor)
phi_spawn sudo-sleep-restart "${SUDO_NS[@]}" env -C "$PHI_TMP/home" setpriv --reuid="${TOTP_UID[alice]}" \
    --regid="${TOTP_UID[alice]}" --init-groups -- "$SUDO" -n -u dbsvc /bin/sleep 602
sleeper=$PHI_LAST_PID
phi_wait_for --timeout 10 --what "sleep 602 under sudo" pgrep -u dbsvc -f '^/bin/sleep 602$' ||
    phi_fail "sudo -u dbsvc sleep 602 runs under the 5-second grant" "$(cat "$PHI_TMP/sudo-sleep-restart.log")"
phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=session_open PHI_REQUEST_ID="$down" >/dev/null ||
    phi_fail "sudo's session is recorded under the grant"
totp_daemon_stop
phi_assert_eq "$(phi_journal_json --after "$cursor" PHI_EVENT=session_ended "PHI_REQUEST_ID=$down")" "" \
    "the grant was still running when the daemon stopped"
sleep 9
phi_check "with the daemon stopped, the sudo it recorded runs on" _phi_alive "$sleeper"
daemon_start
e=$(phi_journal_wait --first --timeout 15 --after "$cursor" PHI_EVENT=session_ended PHI_REQUEST_ID="$down") ||
    phi_fail "a grant that expired while the daemon was stopped ends its sudo at the daemon's start"
phi_assert_eq "$(field "$e" PHI_REASON)" grant_expired "session_ended: PHI_REASON"
phi_wait_for --timeout 10 --what "sudo ended" gone "$sleeper" || phi_fail "sudo has ended"

# ------------------------------------------------ revoke ends the sudo it opened
# This one ignores SIGTERM (sudo passes it on; sh and sleep ignore it): after
# the grace period the daemon kills the command and sudo. Run as root, whose
# processes the daemon may kill without CAP_KILL.
grant 1h
long=$GRANT
cursor=$(phi_journal_cursor)
phi_spawn sudo-sleep-revoke "${SUDO_NS[@]}" env -C "$PHI_TMP/home" setpriv --reuid="${TOTP_UID[alice]}" \
    --regid="${TOTP_UID[alice]}" --init-groups -- "$SUDO" -n /bin/sh -c 'trap "" TERM; exec /bin/sleep 601'
sleeper=$PHI_LAST_PID
phi_wait_for --timeout 10 --what "sleep 601 under sudo" pgrep -u root -f '^/bin/sleep 601$' ||
    phi_fail "sudo sh -c 'trap \"\" TERM; sleep 601' runs under the grant" "$(cat "$PHI_TMP/sudo-sleep-revoke.log")"
phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=session_open PHI_REQUEST_ID="$long" >/dev/null ||
    phi_fail "sudo's session is recorded under the grant"
ctl bob revoke "$long" --reason "incident over"
phi_assert_eq "$RC" 0 "bob, an approver, revokes it" "$OUT"
e=$(phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=session_ended PHI_REQUEST_ID="$long") ||
    phi_fail "the session is ended when the grant is revoked"
phi_assert_eq "$(field "$e" PHI_REASON)" grant_revoked "session_ended: PHI_REASON"
phi_assert_eq "$(field "$e" PHI_SIGNAL)" SIGTERM "SIGTERM first"
phi_check "the command ignores SIGTERM: still there a moment after" pgrep -u root -f '^/bin/sleep 601$'
e=$(phi_journal_wait --first --timeout 20 --after "$cursor" PHI_EVENT=session_ended PHI_REQUEST_ID="$long" \
    PHI_SIGNAL=SIGKILL) || phi_fail "after the grace period the session is killed, journaled"
phi_wait_for --timeout 5 --what "sudo ended" gone "$sleeper" || phi_fail "sudo has ended"
phi_wait_for --timeout 5 --what "sleep ended" bash -c "! pgrep -u root -f '^/bin/sleep 601\$'" ||
    phi_fail "the command that ignored SIGTERM has been killed with sudo"

# ------------------------- NOPASSWD, pam_acct_mgmt off: the plugins alone
sudo_conf approval
cursor=$(phi_journal_cursor)
run_sudo carol -n -u dbsvc /usr/bin/id -un </dev/null
phi_assert_eq "$RC" 1 "carol's NOPASSWD rule is refused by the approval plugin" "$OUT"
phi_assert_contains "$OUT" "holds no active elevation grant" "carol is told why"
phi_assert_contains "$OUT" "phictl request" "and how to ask for a grant"
e=$(sudo_event "$cursor" sudo_denied PHI_USER=carol PHI_STAGE=check) || phi_fail "journaled by the approval plugin"
phi_assert_eq "$(field "$e" PHI_COMMAND)" "/usr/bin/id -un" "sudo_denied: PHI_COMMAND"
phi_assert_eq "$(field "$e" PHI_TARGET_USER)" dbsvc "sudo_denied: PHI_TARGET_USER"
sudo_conf audit
cursor=$(phi_journal_cursor)
run_sudo carol -n -u dbsvc /usr/bin/id -un </dev/null
phi_assert_eq "$RC" 1 "and by the audit plugin alone" "$OUT"
e=$(sudo_event "$cursor" sudo_denied PHI_USER=carol PHI_STAGE=accept) || phi_fail "journaled by the audit plugin"
phi_assert_eq "$(field "$e" PHI_COMMAND)" "/usr/bin/id -un" "sudo_denied: PHI_COMMAND"
sudo_conf
run_sudo carol -n -u dbsvc /usr/bin/id -un </dev/null
phi_assert_eq "$OUT" dbsvc "without sudo_phi the same rule runs: PAM played no part in those refusals"

# ------------------------------- sudoers' own refusal, recorded by the audit plugin
sudo_conf approval audit
cursor=$(phi_journal_cursor)
run_sudo dave -n /usr/bin/id </dev/null
phi_assert_eq "$RC" 1 "dave is in no sudoers rule" "$OUT"
e=$(sudo_event "$cursor" sudo_denied PHI_USER=dave) || phi_fail "sudoers' refusal is recorded by the audit plugin"
# sudoers reports a refused authentication as an error, a rule that does not
# match as a reject: both reach the audit plugin.
phi_assert_match "$(field "$e" PHI_STAGE)" '^(reject|error)$' "sudo_denied: PHI_STAGE, sudo's own refusal"
phi_assert_eq "$(field "$e" PHI_COMMAND)" "/usr/bin/id" "sudo_denied: PHI_COMMAND"

# ---------------------------------------------------- daemon down: refused
totp_daemon_stop
run_sudo carol -n -u dbsvc /usr/bin/id -un </dev/null
phi_assert_eq "$RC" 1 "with the daemon stopped, sudo_phi refuses" "$OUT"
phi_assert_contains "$OUT" "cannot reach phiaccessd" "and says why"
if [ -n "$SAN_LIBS" ]; then
    phi_assert_eq "$(cat "$PHI_TMP"/san/asan.* "$PHI_TMP"/san/ubsan.* 2>/dev/null || true)" "" \
        "no sanitizer report from pam_phi or sudo_phi inside sudo"
fi
phi_pass "sudo enforced by grants through pam_phi and sudo_phi; sessions ended with their grant"

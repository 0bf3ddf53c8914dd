#!/usr/bin/env bash
# Three daemons (hosta, hostb, hostc) on one PostgreSQL, as a fleet runs:
# each in a mount, UTS and network namespace of its own (its hostname,
# sockets, NSS files, identity file, audit key, no network but its own
# loopback), the database a private PostgreSQL 15 reached through a Unix
# socket in the test's directory, the one thing they share. Shown:
#   - a token enrolled via hosta logs in on hostb; a code accepted on hosta is
#     refused on hostb and on hostc (one watermark for the fleet);
#   - a request made on hostb and approved on hosta becomes a membership
#     glibc and nss_phi show on hostb soon after (LISTEN/NOTIFY wakes hostb),
#     and pam_phi's elevate check lets the user in there; hostc, which the
#     role does not cover, shows no membership and refuses the check;
#   - the same with the real setuid sudo on each host (sudoers `%phi-dba`,
#     group_source dynamic, pam_phi and sudo_phi's plugins, each host's own
#     timestamps): refused on hostb before the approval, runs after it and
#     is journaled by hostb's daemon with its command; refused and journaled
#     on hostc;
#   - a revoke on hostc ends it on hostb, sudo refused there again inside
#     its timestamp window;
#   - `phictl audit verify` on hostc verifies the whole fleet's log;
#   - PostgreSQL stopped: NSS answers on every host (a grant in force
#     still listed where its role applies), logins are denied as
#     PAM_AUTHINFO_UNAVAIL with store_unreachable journaled once per host,
#     phictl status says so; back: store_recovered, logins work, nothing
#     acknowledged before is lost (watermark, request state, audit records).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
# shellcheck source-path=SCRIPTDIR source=nss_lib.bash
source "$(dirname "$0")/nss_lib.bash"
# shellcheck source-path=SCRIPTDIR source=fleet-lib.bash
source "$(dirname "$0")/fleet-lib.bash"
# shellcheck source-path=SCRIPTDIR source=../lib/postgres.bash
source "$(dirname "$0")/../lib/postgres.bash"
phi_harness_init "$@"
command -v jq >/dev/null || phi_die "jq is missing; run ./scripts/setup"
nss_init
nss_install
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so
PHIACCESSD=$PHI_BUILD_DIR/phiaccessd/phiaccessd
HOSTS=(hosta hostb hostc)
FLEET_NET=1

phi_pg_start
totp_setup
cat >>"$TOTP_DIR/group" <<'GROUPS'
dba-oncall:x:3100:alice,dave
dba-approvers:x:3101:bob,carol
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
hosts = hosta hostb
POLICY
chmod 0644 "$POLICY"
totp_stack phi-auth "auth required $PAM_PHI"
totp_stack sudo "account required $PAM_PHI elevate" "session required $PAM_PHI elevate"
sed -i "/^\[daemon\]/a policy = $POLICY" "$TOTP_CONF"
fleet_setup "${HOSTS[@]}"
# The shared part in PostgreSQL, as the daemon's role; the identity file
# stays each host's own (bound over $SHARED's by host_start).
for h in "${HOSTS[@]}"; do
    sed -i "/^\[store\]/a backend = postgresql\nuri = $PHI_PG_URI" "${DIR[$h]}/phiaccessd.conf"
done
mkdir -p "$PHI_TMP/owner"
sed -e "s#^uri = host=.*#uri = $PHI_PG_URI_OWNER#" -e "s#^path = .*#path = $PHI_TMP/owner/phi.db#" "${DIR[hosta]}/phiaccessd.conf" >"$PHI_TMP/owner.conf"
chmod 0600 "$PHI_TMP/owner.conf"
out=$("$PHIACCESSD" --config "$PHI_TMP/owner.conf" --init-store 2>&1) || phi_fail "--init-store" "$out"

psql_val() { phi_pg_psql -tAc "$1"; }
sudo_account() { # HOST USER: pam_phi account with elevate on HOST
    on "$1" timeout 20 "$PHI_BUILD_DIR/tests/pam_driver" --confdir "$TOTP_DIR/pam.d" --service sudo \
        --user "$2" --op account --tty pts/1 2>>"$PHI_TMP/pam_driver.log" || true
}
login() { # HOST USER CODE: pam_phi auth on HOST
    on "$1" timeout 20 "$PHI_BUILD_DIR/tests/pam_driver" --confdir "$TOTP_DIR/pam.d" --service phi-auth \
        --user "$2" --answer "$3" 2>>"$PHI_TMP/pam_driver.log" || true
}
lacks_member() {
    ! has_member "$@"
}
nss_get() { # HOST DB KEY: getent through nss_phi on HOST (as members does)
    # shellcheck disable=SC2016 # expanded by the inner sh
    on "$1" env PRELOAD="$NSS_SAN_PRELOAD" unshare --mount --propagation private -- sh -c '
        mount --bind "$1" /etc/nsswitch.conf && mount --bind "$2" /etc/passwd && mount --bind "$3" /etc/group ||
            exit 125
        shift 3
        [ -z "$PRELOAD" ] || export LD_PRELOAD="$PRELOAD"
        exec getent "$@"' nss-run "$PHI_TMP/nsswitch.conf" "$PHI_TMP/passwd" "$PHI_TMP/group" "$2" "$3" || true
}

# ------------------------------------------- /etc for sudo, its calls only
# Each sudo call binds these over /etc in a mount namespace of its own inside
# the host's: the host's accounts plus the test users and dbsvc (the run-as
# target), nsswitch.conf saying phi (the grant's group comes from nss_phi, as
# on a real host), the rule naming only the grant's group, and sudo's PAM
# stack with pam_phi (the code, then the grant on every call, even inside
# the timestamp window). /run/sudo is each host's own: a timestamp made on
# one host is no use on another.
SUDO=$(command -v sudo) || phi_die "sudo is missing; run ./scripts/setup"
[ -u "$SUDO" ] || phi_die "$SUDO is not setuid root"
SUDO_PHI=$PHI_BUILD_DIR/sudo_phi/sudo_phi.so
ETC=$PHI_TMP/etc
mkdir -p "$ETC" "$PHI_TMP/home"
{
    cat /etc/passwd
    grep -v '^root:' "$TOTP_DIR/passwd"
    echo "dbsvc:x:2100:2100:db service:/nonexistent:/bin/sh"
} >"$ETC/passwd"
# phi-dba is nss_phi's alone: a files entry would hide its members.
{
    cat /etc/group
    grep -v -e '^root:' -e '^phi-admins:' -e '^phi-dba:' "$TOTP_DIR/group"
    for u in "${TOTP_USERS[@]}"; do echo "$u:x:${TOTP_UID[$u]}:"; done
    echo "dbsvc:x:2100:"
} >"$ETC/group"
cp "$PHI_TMP/nsswitch.conf" "$ETC/nsswitch.conf"
cat >"$ETC/pam.sudo" <<PAM
auth     required $PAM_PHI
account  required $PAM_PHI elevate
session  required $PAM_PHI elevate
PAM
# timestamp_type=global: one window per host for every call (no tty to key
# it to); 5 minutes, longer than the test.
cat >"$ETC/sudoers" <<'SUDOERS'
Defaults env_reset, !lecture, timestamp_type=global, timestamp_timeout=5, passwd_tries=1
%phi-dba ALL=(ALL) ALL
SUDOERS
chmod 0440 "$ETC/sudoers"
visudo -c -f "$ETC/sudoers" >/dev/null || phi_die "the test's sudoers does not parse"
# Group memberships read at each call: a grant's group ends with it.
printf 'Set group_source dynamic\nPlugin sudoers_policy sudoers.so\nPlugin sudoers_io sudoers.so
Plugin sudoers_audit sudoers.so\nPlugin sudo_phi_approval %s\nPlugin sudo_phi_audit %s\n' \
    "$SUDO_PHI" "$SUDO_PHI" >"$ETC/sudo.conf"
chmod 0644 "$ETC/sudo.conf" "$ETC/passwd" "$ETC/group" "$ETC/nsswitch.conf" "$ETC/pam.sudo"
for h in "${HOSTS[@]}"; do
    mkdir -p "${DIR[$h]}/sudo"
    chmod 0711 "${DIR[$h]}/sudo"
done
phi_private_dir /run/sudo
phi_private_dir /var/lib/sudo
# The sanitizer build's modules need their runtimes loaded first in sudo,
# which, being setuid, ignores LD_PRELOAD but not /etc/ld.so.preload: an
# empty one (in an overlay of /etc, the test's alone, made before the hosts'
# namespaces so that they have it), the runtimes bound over it for each sudo
# call. Leak reports would be sudo's; the others are read at the end.
SAN_LIBS=$(ldd "$PAM_PHI" | awk '/libasan|libubsan/ { print $3 }')
SUDO_PRELOAD=
SUDO_ENV=()
if [ -n "$SAN_LIBS" ]; then
    _phi_overlay /etc
    : >/etc/ld.so.preload
    SUDO_PRELOAD=$PHI_TMP/ld.so.preload
    printf '%s\n' "$SAN_LIBS" >"$SUDO_PRELOAD"
    mkdir -p "$PHI_TMP/san"
    chmod 0755 "$PHI_TMP/san"
    SUDO_ENV=("ASAN_OPTIONS=detect_leaks=0:log_path=$PHI_TMP/san/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
        "UBSAN_OPTIONS=print_stacktrace=1:log_path=$PHI_TMP/san/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}")
fi
# stdout apart from stderr: sudo warns there that it cannot resolve the
# host's name (the host has no network).
run_sudo() { # HOST USER ARGS...: sudo on HOST as USER, stdin from the caller; stdout in OUT, stderr in ERR, status in RC
    local h=$1 u=$2
    shift 2
    RC=0
    # shellcheck disable=SC2016 # expanded by the inner sh
    OUT=$(on "$h" env "${SUDO_ENV[@]}" unshare --mount --propagation private -- sh -c '
        d=$1 etc=$2 preload=$3 uid=$4 home=$5
        shift 5
        for f in passwd group nsswitch.conf sudoers sudo.conf; do
            mount --bind "$etc/$f" "/etc/$f" || exit 125
        done
        mount --bind "$etc/pam.sudo" /etc/pam.d/sudo && mount --bind "$d/sudo" /run/sudo || exit 125
        [ -z "$preload" ] || mount --bind "$preload" /etc/ld.so.preload || exit 125
        exec env -C "$home" setpriv --reuid="$uid" --regid="$uid" --init-groups -- timeout 20 "$@"' \
        sudo-run "${DIR[$h]}" "$ETC" "$SUDO_PRELOAD" "${TOTP_UID[$u]}" "$PHI_TMP/home" "$SUDO" "$@" \
        2>"$PHI_TMP/sudo.err") || RC=$?
    ERR=$(cat "$PHI_TMP/sudo.err")
}
sudo_with_code() { # HOST USER ARGS...: sudo -S on HOST, answering the code prompt with a fresh code
    local h=$1 u=$2 step
    shift 2
    step=$(totp_fresh_step "$u")
    run_sudo "$h" "$u" -S -p "" "$@" <<<"$(totp_code "$u" "$step")"
    # Used up whether or not the command then ran.
    TOTP_LAST[$u]=$step
}
sudo_event() { # HOST CURSOR EVENT FIELD=VALUE...: the first such entry HOST's daemon journaled
    local h=$1 cursor=$2 ev=$3
    shift 3
    phi_journal_wait --first --timeout 10 --after "$cursor" SYSLOG_IDENTIFIER=phiaccessd "_PID=${PID[$h]}" \
        "PHI_EVENT=$ev" "$@"
}

for h in "${HOSTS[@]}"; do host_start "$h"; done
for h in "${HOSTS[@]}"; do
    phi_assert_eq "$(on "$h" hostname)" "$h" "$h runs under its own hostname"
    phi_check_fails "$h has no network of its own: the database is reached by its socket only" \
        on "$h" bash -c 'exec 3<>/dev/tcp/127.0.0.1/22' 2>/dev/null
    ctl "$h" root status
    phi_assert_eq "$(pair store_backend)" postgresql "$h's store is PostgreSQL" "$OUT"
done

listeners() { [ "$(psql_val "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'phiaccessd-listen'
    AND state = 'idle' AND query = 'LISTEN phi_changes'")" = "$1" ]; }
phi_wait_for --timeout 5 --what "three LISTEN connections" -- listeners 3 ||
    phi_fail "each daemon LISTENs for the change feed's notifications" "$(psql_val 'SELECT application_name, query FROM pg_stat_activity')"
phi_pass "each daemon LISTENs for the change feed's notifications on a connection of its own"

# ------------------------------------------- enrolled via A, logs in on B
export PHI_SOCKET=${DIR[hosta]}/run/socket
totp_enroll alice
unset PHI_SOCKET
phi_assert_eq "$(psql_val "SELECT count(*) FROM totp_tokens WHERE state = 2")" 1 "the token enrolled via hosta is in PostgreSQL"
step=$(totp_fresh_step alice)
phi_assert_eq "$(login hostb alice "$(totp_code alice "$step")")" PAM_SUCCESS "the token enrolled via hosta logs in on hostb"
TOTP_LAST[alice]=$step
step=$(totp_fresh_step alice)
code=$(totp_code alice "$step")
phi_assert_eq "$(login hosta alice "$code")" PAM_SUCCESS "a fresh code logs in on hosta"
TOTP_LAST[alice]=$step
phi_assert_eq "$(login hostb alice "$code")" PAM_AUTH_ERR "the code accepted on hosta is refused on hostb"
phi_assert_eq "$(login hostc alice "$code")" PAM_AUTH_ERR "and on hostc"
phi_assert_eq "$(psql_val "SELECT watermark FROM totp_tokens WHERE state = 2")" "$step" "the fleet's watermark is that step"

# ---------------------------------------------- a request on B, approved on A
ctl hostb alice request dba --for 1h --reason "orders table on hostb"
phi_assert_eq "$RC" 0 "alice asks for dba on hostb" "$OUT"
id=$(pair id)
phi_assert_match "$id" '^[0-9a-f]{12}$' "the request has an id"
ctl hosta bob requests
phi_assert_contains "$OUT" "$id" "hosta lists the request made on hostb"
phi_assert_eq "$(sudo_account hostb alice)" PAM_PERM_DENIED "before the approval hostb refuses alice's elevate check"
cursor=$(phi_journal_cursor)
sudo_with_code hostb alice -u dbsvc /usr/bin/id -un
phi_assert_eq "$RC" 1 "before the approval alice's sudo on hostb is refused, her code right" "$OUT$ERR"
phi_assert_contains "$ERR" "account management error: Permission denied" \
    "refused by pam_phi's account check: no grant yet"
phi_assert_not_contains "$OUT" dbsvc "and the command did not run"
sudo_event hostb "$cursor" sudo_denied PHI_USER=alice "PHI_COMMAND=/usr/bin/id -un" >/dev/null ||
    phi_fail "hostb's daemon journals the refused sudo as sudo_denied, with its command"
phi_pass "hostb's daemon journals the refused sudo as sudo_denied, with its command"
ctl hosta bob approve "$id"
phi_assert_eq "$RC" 0 "bob approves on hosta" "$OUT"
phi_assert_eq "$(pair state)" active "the grant is active"
if phi_wait_for --timeout 5 --what "alice in phi-dba on hostb" -- has_member hostb phi-dba alice; then
    phi_pass "hostb's NSS lists alice in phi-dba (approved on hosta)"
else
    phi_fail "hostb's NSS never listed alice in phi-dba" "$(members hostb phi-dba)"
fi
phi_assert_eq "$(sudo_account hostb alice)" PAM_SUCCESS "hostb's elevate check lets alice in"
cursor=$(phi_journal_cursor)
sudo_with_code hostb alice -u dbsvc /usr/bin/id -un
phi_assert_eq "$RC" 0 "approved on hosta, alice's sudo on hostb runs" "$OUT$ERR"
phi_assert_eq "$OUT" dbsvc "as dbsvc"
e=$(sudo_event hostb "$cursor" sudo_escalation PHI_STAGE=accept PHI_USER=alice) ||
    phi_fail "hostb's daemon journals the command as sudo_escalation"
phi_assert_eq "$(phi_json_field PHI_COMMAND <<<"$e")" "/usr/bin/id -un" "sudo_escalation on hostb: PHI_COMMAND"
phi_assert_eq "$(phi_json_field PHI_TARGET_USER <<<"$e")" dbsvc "sudo_escalation on hostb: PHI_TARGET_USER"
phi_assert_eq "$(phi_json_field PHI_REQUEST_ID <<<"$e")" "$id" "sudo_escalation on hostb: the grant approved on hosta"
run_sudo hostb alice -n -u dbsvc /usr/bin/id -un </dev/null
phi_assert_eq "$RC:$OUT" 0:dbsvc "a second sudo on hostb inside its timestamp window runs without a code" "$OUT$ERR"
sleep 1.5
phi_assert_not_contains ",$(members hostc phi-dba)," ",alice," "hostc's NSS does not list alice (role dba does not cover hostc)"
phi_assert_eq "$(sudo_account hostc alice)" PAM_PERM_DENIED "hostc's elevate check refuses alice"
cursor=$(phi_journal_cursor)
sudo_with_code hostc alice -u dbsvc /usr/bin/id -un
phi_assert_eq "$RC" 1 "alice's sudo on hostc is refused (role dba does not cover hostc)" "$OUT$ERR"
phi_assert_contains "$ERR" "account management error: Permission denied" \
    "refused by pam_phi's account check: the grant is not for hostc"
phi_assert_not_contains "$OUT" dbsvc "and the command did not run"
sudo_event hostc "$cursor" sudo_denied PHI_USER=alice "PHI_COMMAND=/usr/bin/id -un" >/dev/null ||
    phi_fail "hostc's daemon journals it as sudo_denied, with its command"
phi_pass "hostc's daemon journals it as sudo_denied, with its command"

# ---------------------------------------------------- revoke on C ends it on B
ctl hostc bob revoke "$id" --reason "done, from hostc"
phi_assert_eq "$RC" 0 "bob revokes on hostc" "$OUT"
if phi_wait_for --timeout 5 --what "alice out of phi-dba on hostb" -- lacks_member hostb phi-dba alice; then
    phi_pass "hostb's NSS no longer lists alice (revoked on hostc)"
else
    phi_fail "hostb still lists alice after the revoke on hostc" "$(members hostb phi-dba)"
fi
phi_assert_eq "$(sudo_account hostb alice)" PAM_PERM_DENIED "hostb's elevate check refuses alice after the revoke"
cursor=$(phi_journal_cursor)
run_sudo hostb alice -n -u dbsvc /usr/bin/id -un </dev/null
phi_assert_eq "$RC" 1 "revoked on hostc, alice's sudo on hostb is refused inside its timestamp window" "$OUT$ERR"
phi_assert_contains "$ERR" "account management error: Permission denied" \
    "by pam_phi's account check, which sudo calls even inside the window"
phi_assert_not_contains "$OUT" dbsvc "and the command did not run"
sudo_event hostb "$cursor" sudo_denied PHI_USER=alice "PHI_COMMAND=/usr/bin/id -un" >/dev/null ||
    phi_fail "hostb's daemon journals it as sudo_denied"
phi_pass "hostb's daemon journals it as sudo_denied"
if [ -n "$SAN_LIBS" ]; then
    phi_assert_eq "$(cat "$PHI_TMP"/san/asan.* "$PHI_TMP"/san/ubsan.* 2>/dev/null || true)" "" \
        "no sanitizer report from pam_phi, sudo_phi or nss_phi inside sudo"
fi
ctl hostb root status
phi_check "hostb reacted to other hosts' changes ($(pair fleet_changes_applied))" test "$(pair fleet_changes_applied)" -gt 0

# ------------------------------------------------- the fleet's log, verified on C
ctl hostc root audit verify
phi_assert_eq "$RC" 0 "phictl audit verify passes on hostc" "$OUT"
phi_assert_contains "$OUT" "verified:    the live audit log" "hostc: the live log verified"
phi_assert_eq "$(sed -n 's/^origin: *//p' <<<"$OUT")" "$FLEET_ORIGIN" "the log's origin is the fleet's"
for h in hosta hostb; do
    phi_check "the log holds $h's records" test "$(psql_val "SELECT count(*) FROM audit_log WHERE host = '$h'")" -gt 0
done
phi_assert_eq "$(psql_val 'SELECT count(*) = count(DISTINCT seq) AND min(seq) = 0 AND max(seq) = count(*) - 1 FROM audit_log')" \
    t "one tree: seqs unique and gapless"

# ------------------------------------------------------ PostgreSQL stopped
# A grant in force when the database goes: it stays, to its expiry.
ctl hostb alice request dba --for 1h --reason "during the outage"
held=$(pair id)
ctl hosta carol approve "$held"
phi_assert_eq "$RC" 0 "carol approves a second grant on hosta" "$OUT"
phi_wait_for --timeout 5 --what "alice in phi-dba on hostb" -- has_member hostb phi-dba alice ||
    phi_fail "the second grant never showed on hostb"
records=$(psql_val 'SELECT count(*) FROM audit_log')
cur=$(phi_journal_cursor)
phi_pg_stop
for h in hosta hostb; do
    phi_assert_match "$(nss_get "$h" group phi-dba)" '^phi-dba:[x*]:3102:(.*,)?alice(,|$)' \
        "database down: $h's NSS still answers, with the grant in force"
done
phi_assert_not_contains ",$(members hostc phi-dba)," ",alice," "hostc's still lists no membership (outside the role)"
step=$(totp_fresh_step alice)
code=$(totp_code alice "$step")
for h in "${HOSTS[@]}"; do
    phi_assert_eq "$(login "$h" alice "$code")" PAM_AUTHINFO_UNAVAIL "database down: a right code is not accepted on $h"
done
phi_assert_eq "$(login hostb alice "$code")" PAM_AUTHINFO_UNAVAIL "nor a second time"
for h in "${HOSTS[@]}"; do
    ctl "$h" root status
    [ "$(pair store_reachable)" = no ] || phi_fail "$h's phictl status says the store is unreachable" "$RC: $OUT"
    phi_pass "$h's phictl status says the store is unreachable"
done
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=store_unreachable) ||
    phi_fail "store_unreachable is journaled"
phi_assert_contains "$(phi_json_field MESSAGE <<<"$ev")" "$PHI_PG_SOCK" "store_unreachable names the server"
phi_check "and says why" test -n "$(phi_json_field PHI_ERROR <<<"$ev")"
n=$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=store_unreachable | grep -c . || true)
phi_assert_eq "$n" 3 "once per daemon and outage, not once per failed round or connection"
phi_check_fails "nothing was accepted meanwhile" phi_journal_wait --timeout 1 --after "$cur" \
    SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok

cur=$(phi_journal_cursor)
phi_pg_restart
phi_assert_eq "$(login hostc alice "$code")" PAM_SUCCESS "PostgreSQL back: the code logs in on hostc, no daemon restarted"
TOTP_LAST[alice]=$step
phi_assert_eq "$(login hosta alice "$code")" PAM_AUTH_ERR "and only once, on any host"
phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=store_recovered >/dev/null ||
    phi_fail "store_recovered is journaled"
phi_pass "store_recovered is journaled"
phi_assert_eq "$(psql_val "SELECT state FROM elevation_requests WHERE id = '$id'")" 6 "the revoked request is still revoked"
phi_assert_eq "$(psql_val "SELECT state FROM elevation_requests WHERE id = '$held'")" 2 "the grant approved before is still active"
phi_check "and still listed on hostb" has_member hostb phi-dba alice
phi_check "every audit record from before the outage is there" \
    test "$(psql_val 'SELECT count(*) FROM audit_log')" -gt "$records"
ctl hostc root status
phi_assert_eq "$(pair store_reachable)" yes "hostc's phictl status says the store is reachable again"
# Its listening connection is made again after a backoff (at most 10 s).
phi_wait_for --timeout 20 --what "three LISTEN connections again" -- listeners 3 ||
    phi_fail "the daemons LISTEN again after the outage"
phi_pass "the daemons LISTEN again after the outage"
ctl hosta root audit verify
phi_assert_eq "$RC" 0 "phictl audit verify passes on hosta after the outage" "$OUT"

for h in "${HOSTS[@]}"; do
    phi_stop_pid "${PID[$h]}"
done

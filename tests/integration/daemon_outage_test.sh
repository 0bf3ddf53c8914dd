#!/usr/bin/env bash
# phiaccessd when the directory misbehaves, and who may ask for a sync:
#  - two URIs with the first dead: the second is used;
#  - caller authorisation for `sync` (non-admin refused and journaled, root,
#    local admin group and directory admin group allowed);
#  - slapd killed: last good data still served, outage in status and journal;
#    slapd back: the daemon reconnects by itself;
#  - a refresh that would empty the directory is refused, last good data kept.
# shellcheck disable=SC2016 # bash -c snippets read their arguments as $0, $1
# shellcheck disable=SC2119 # harness functions take optional arguments
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=daemon_lib.bash
source "$(dirname "$0")/daemon_lib.bash"
phi_harness_init "$@"

suffix=dc=example,dc=org
phi_gen_ldif --suffix "$suffix" --users 2000 --groups 100 --nested >"$PHI_TMP/dir.ldif"
phi_slapd_start "$suffix" "$PHI_TMP/dir.ldif"
good_uri=$PHI_LDAP_URI
dead_uri=ldap://127.0.0.1:3899
phi_journald_start
daemon_setup
# A local admin account, and an unprivileged one.
printf 'opsadmin:x:1700:1700::/home/o:/bin/sh\nnobody2:x:4242:4242::/:/bin/sh\n' >>"$DAEMON_DIR/passwd"
printf 'phi-admins:x:1600:opsadmin\n' >"$DAEMON_DIR/group.new"
grep -v '^phi-admins:' "$DAEMON_DIR/group" >>"$DAEMON_DIR/group.new"
mv "$DAEMON_DIR/group.new" "$DAEMON_DIR/group"
DAEMON_EXTRA="refresh_interval = 10s" daemon_config "$dead_uri" "$good_uri"
# Other uids must reach the socket (it is 0666 by design; the test's temp dirs are 0700).
chmod 755 "$PHI_RUN_DIR" "$PHI_TMP" "$DAEMON_DIR" "$DAEMON_DIR/run"
daemon_start

# --------------------------------------------------------------- failover
phi_check "first URI dead: the load completes from the second" wait_users 2000
phi_assert_eq "$(status_get directory)" "$good_uri" "status names the second URI"
phi_assert_eq "$(status_get outage)" false "no outage reported"

# --------------------------------------------------------- authorisation
as_uid() { # UID CMD...
    local uid=$1
    shift
    setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"
}
rc=0; out=$(as_uid 4242 "$PHI_CTL" --socket "$DAEMON_SOCKET" sync 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "non-admin uid 4242: sync refused with exit 1"
phi_assert_contains "$out" "permission denied" "refusal says permission denied"
phi_assert_contains "$out" "members of phi-admins" "refusal names who may"
phi_assert_contains "$out" "nobody2" "refusal names the caller"
entry=$(phi_journal_wait --timeout 10 PHI_EVENT=access_denied PHI_VERB=sync | tail -n 1)
phi_assert_eq "$(jq -r .PHI_ACTOR <<<"$entry")" nobody2 "refusal journaled with PHI_ACTOR"
phi_assert_eq "$(jq -r .PRIORITY <<<"$entry")" 4 "refusal journaled at warning"
phi_check "the same uid may read status" as_uid 4242 "$PHI_CTL" --socket "$DAEMON_SOCKET" status
phi_check "and user show" as_uid 4242 "$PHI_CTL" --socket "$DAEMON_SOCKET" user show user00001
rc=0; out=$(as_uid 10001 "$PHI_CTL" --socket "$DAEMON_SOCKET" sync 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "a directory user outside the admin group is refused too"
phi_check "root may sync" ctl sync
phi_check "root may sync --full" ctl sync --full
phi_check "a member of the local phi-admins group may sync" as_uid 1700 "$PHI_CTL" --socket "$DAEMON_SOCKET" sync
phi_ldapmodify >/dev/null <<LDIF
dn: cn=phi-admins,ou=groups,$suffix
changetype: add
objectClass: groupOfNames
objectClass: posixGroup
cn: phi-admins
gidNumber: 30000
member: uid=user00003,ou=people,$suffix
LDIF
phi_check "a directory group phi-admins arrives" phi_wait_for --timeout 20 \
    bash -c '[ "$("$0" --json user show user00003 | jq -r ".groups | index(\"phi-admins\") != null")" = true ]' "$PHI_CTL"
phi_check "its member (uid 10003, known only from the directory) may sync" \
    as_uid 10003 "$PHI_CTL" --socket "$DAEMON_SOCKET" sync

# SIGHUP: a new admin group takes effect without a restart; a broken file
# changes nothing.
sed -i 's/^admin_group = phi-admins$/admin_group = grp00001/' "$DAEMON_CONF"
kill -HUP "$DAEMON_PID"
phi_check "after SIGHUP the new admin group's member (user00001) may sync" phi_wait_for --timeout 10 \
    as_uid 10001 "$PHI_CTL" --socket "$DAEMON_SOCKET" sync
phi_check_fails "and the old local admin may not" as_uid 1700 "$PHI_CTL" --socket "$DAEMON_SOCKET" sync
cp "$DAEMON_CONF" "$PHI_TMP/good.conf"
printf '[ldap]\nbogus = 1\n' >>"$DAEMON_CONF"
kill -HUP "$DAEMON_PID"
phi_check "a broken file on SIGHUP is journaled" phi_wait_for --timeout 10 \
    bash -c 'journalctl --sync; journalctl -o cat SYSLOG_IDENTIFIER=phiaccessd | grep -q "keeping the running configuration"'
phi_check "and the running configuration stays" as_uid 10001 "$PHI_CTL" --socket "$DAEMON_SOCKET" sync
cp "$PHI_TMP/good.conf" "$DAEMON_CONF"
sed -i 's/^admin_group = grp00001$/admin_group = phi-admins/' "$DAEMON_CONF"
kill -HUP "$DAEMON_PID"
phi_check "SIGHUP back to phi-admins" phi_wait_for --timeout 10 \
    as_uid 1700 "$PHI_CTL" --socket "$DAEMON_SOCKET" sync

# Many clients at once: every one gets its answer.
pids=()
for i in $(seq 1 60); do
    ctl --json status >"$PHI_TMP/status.$i" 2>&1 &
    pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
phi_assert_eq "$failed" 0 "60 concurrent status requests all answered"
phi_assert_eq "$(cat "$PHI_TMP"/status.* | jq -r .daemon | sort -u)" running "with a valid reply each"

# ------------------------------------------------------------------ outage
cursor=$(phi_journal_cursor)
phi_slapd_stop --kill
phi_check "slapd killed: status reports the outage" phi_wait_for --timeout 20 status_is outage true
phi_assert_match "$(status_get sync_state)" '^(disconnected|connecting)$' "sync state shows the directory is away"
phi_assert_ne "$(status_get last_error)" none "last_error explains"
phi_assert_eq "$(ctl --json user show user01234 | jq -r .uid)" 11234 "last good data still served"
phi_assert_eq "$(status_get users)" 2000 "no user lost"
entry=$(phi_journal_wait --timeout 10 --after "$cursor" PHI_EVENT=ldap_sync PHI_OUTCOME=disconnected | tail -n 1)
phi_assert_eq "$(jq -r .PRIORITY <<<"$entry")" 4 "outage journaled at warning"
rc=0; out=$(ctl sync 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "sync during the outage fails"
phi_assert_contains "$out" "unreachable" "and says the directory is unreachable"

phi_slapd_restart
phi_check "slapd back: the daemon reconnects by itself" phi_wait_for --timeout 60 status_is sync_state live
phi_assert_eq "$(status_get outage)" false "outage over"
phi_check "reconnect counted" status_ge reconnects 1
phi_ldapmodify >/dev/null <<LDIF
dn: uid=user00009,ou=people,$suffix
changetype: modify
replace: loginShell
loginShell: /bin/after-outage
LDIF
phi_check "changes flow again after the reconnect" phi_wait_for --timeout 20 \
    bash -c '[ "$("$0" --json user show user00009 | jq -r .shell)" = /bin/after-outage ]' "$PHI_CTL"

# ------------------------------------------------------- refused refresh
# The good server goes away and an empty directory answers on the first URI.
printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: example\n\ndn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\ndn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n' \
    "$suffix" "$suffix" "$suffix" >"$PHI_TMP/empty.ldif"
gen=$(status_get snapshot_generation)
phi_slapd_stop
phi_slapd_start --name empty --port 3899 "$suffix" "$PHI_TMP/empty.ldif"
phi_check "the empty refresh is refused" phi_wait_for --timeout 60 status_ge refreshes_refused 1
phi_assert_contains "$(status_get last_error)" "refused" "status explains the refusal"
rc=0; out=$(ctl sync --full 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "sync --full against the empty directory fails"
phi_assert_contains "$out" "no users" "and says the directory returned no users"
phi_assert_eq "$(status_get users)" 2000 "the last good users are kept"
phi_assert_eq "$(status_get groups)" 101 "and the groups (100 + phi-admins)"
phi_assert_eq "$(ctl --json user show user00042 | jq -r .uid)" 10042 "and served"
phi_assert_eq "$(status_get snapshot_generation)" "$gen" "no snapshot published from the empty refresh"
entry=$(phi_journal_wait --timeout 10 PHI_EVENT=ldap_sync PHI_OUTCOME=refused | tail -n 1)
phi_assert_eq "$(jq -r .PRIORITY <<<"$entry")" 3 "refusal journaled at error"
phi_assert_contains "$(jq -r .PHI_REASON <<<"$entry")" "no users" "with the reason"

# A restart while no directory answers at all: the store is served at once and
# the last sync time is not faked.
last_sync=$(status_get last_sync)
daemon_stop
phi_slapd_stop empty
daemon_start
phi_check "after a restart with no directory, status reports the outage" phi_wait_for --timeout 20 status_is outage true
phi_assert_eq "$(status_get users)" 2000 "the stored users are served"
phi_assert_eq "$(ctl --json user show user01999 | jq -r .uid)" 11999 "user show works from the store"
phi_assert_eq "$(status_get last_sync)" "$last_sync" "last_sync is the real last sync, not the restart"

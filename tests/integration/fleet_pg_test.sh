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
#   - a revoke on hostc ends it on hostb;
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
ctl hosta bob approve "$id"
phi_assert_eq "$RC" 0 "bob approves on hosta" "$OUT"
phi_assert_eq "$(pair state)" active "the grant is active"
if phi_wait_for --timeout 5 --what "alice in phi-dba on hostb" -- has_member hostb phi-dba alice; then
    phi_pass "hostb's NSS lists alice in phi-dba (approved on hosta)"
else
    phi_fail "hostb's NSS never listed alice in phi-dba" "$(members hostb phi-dba)"
fi
phi_assert_eq "$(sudo_account hostb alice)" PAM_SUCCESS "hostb's elevate check lets alice in"
sleep 1.5
phi_assert_not_contains ",$(members hostc phi-dba)," ",alice," "hostc's NSS does not list alice (role dba does not cover hostc)"
phi_assert_eq "$(sudo_account hostc alice)" PAM_PERM_DENIED "hostc's elevate check refuses alice"

# ---------------------------------------------------- revoke on C ends it on B
ctl hostc bob revoke "$id" --reason "done, from hostc"
phi_assert_eq "$RC" 0 "bob revokes on hostc" "$OUT"
if phi_wait_for --timeout 5 --what "alice out of phi-dba on hostb" -- lacks_member hostb phi-dba alice; then
    phi_pass "hostb's NSS no longer lists alice (revoked on hostc)"
else
    phi_fail "hostb still lists alice after the revoke on hostc" "$(members hostb phi-dba)"
fi
phi_assert_eq "$(sudo_account hostb alice)" PAM_PERM_DENIED "hostb's elevate check refuses alice after the revoke"
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

#!/usr/bin/env bash
# Two daemons (hosta, hostb, each in mount, UTS and network namespaces of its
# own) on a PostgreSQL primary with a synchronous streaming replica
# (pg_basebackup -R; synchronous_standby_names on the primary, so a COMMIT
# returns once the replica has it), their connection string naming both
# socket directories with target_session_attrs=read-write. The primary is
# killed with SIGKILL: logins meanwhile are denied (PAM_AUTHINFO_UNAVAIL),
# never accepted; the replica is promoted and the daemons move to it by
# themselves. Every login, approval and audit record acknowledged before the
# kill is there after it: the code accepted before is refused, the request
# is still active (and still a membership on hostb), the audit log holds the
# records and `phictl audit verify` passes.
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
nss_init
nss_install
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so
PHIACCESSD=$PHI_BUILD_DIR/phiaccessd/phiaccessd
HOSTS=(hosta hostb)
FLEET_NET=1

phi_pg_start
phi_pg_replica_start
totp_setup
cat >>"$TOTP_DIR/group" <<'GROUPS'
dba-oncall:x:3100:alice
dba-approvers:x:3101:bob
phi-dba:x:3102:
GROUPS
POLICY=$TOTP_DIR/policy.conf
cat >"$POLICY" <<'POLICY'
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
sed -i "/^\[daemon\]/a policy = $POLICY" "$TOTP_CONF"
fleet_setup "${HOSTS[@]}"
for h in "${HOSTS[@]}"; do
    sed -i "/^\[store\]/a backend = postgresql\nuri = $PHI_PG_URI_BOTH" "${DIR[$h]}/phiaccessd.conf"
done
mkdir -p "$PHI_TMP/owner"
sed -e "s#^uri = host=.*#uri = $PHI_PG_URI_OWNER#" -e "s#^path = .*#path = $PHI_TMP/owner/phi.db#" \
    "${DIR[hosta]}/phiaccessd.conf" >"$PHI_TMP/owner.conf"
chmod 0600 "$PHI_TMP/owner.conf"
out=$("$PHIACCESSD" --config "$PHI_TMP/owner.conf" --init-store 2>&1) || phi_fail "--init-store" "$out"

psql_val() { phi_pg_psql -tAc "$1"; }
login() { # HOST USER CODE: pam_phi auth on HOST
    on "$1" timeout 30 "$PHI_BUILD_DIR/tests/pam_driver" --confdir "$TOTP_DIR/pam.d" --service phi-auth \
        --user "$2" --answer "$3" 2>>"$PHI_TMP/pam_driver.log" || true
}

for h in "${HOSTS[@]}"; do host_start "$h"; done
export PHI_SOCKET=${DIR[hosta]}/run/socket
totp_enroll alice
unset PHI_SOCKET
step=$(totp_fresh_step alice)
code=$(totp_code alice "$step")
phi_assert_eq "$(login hostb alice "$code")" PAM_SUCCESS "before the kill: a code logs in on hostb"
TOTP_LAST[alice]=$step
ctl hostb alice request dba --for 1h --reason "before the failover"
id=$(pair id)
ctl hosta bob approve "$id"
phi_assert_eq "$RC" 0 "before the kill: bob approves on hosta" "$OUT"
phi_wait_for --timeout 5 --what "alice in phi-dba on hostb" -- has_member hostb phi-dba alice ||
    phi_fail "the grant never showed on hostb"
records=$(psql_val 'SELECT count(*) FROM audit_log')
phi_assert_eq "$(phi_pg_psql -d postgres -tAc "SELECT sync_state FROM pg_stat_replication")" sync \
    "the replica is a synchronous standby"

# ------------------------------------------------------------ the kill
cur=$(phi_journal_cursor)
phi_pg_kill_primary
gap_step=$(totp_fresh_step alice)
gap_code=$(totp_code alice "$gap_step")
for h in "${HOSTS[@]}"; do
    phi_assert_eq "$(login "$h" alice "$gap_code")" PAM_AUTHINFO_UNAVAIL "primary killed, replica not promoted: $h denies"
done
phi_check_fails "nothing was accepted in the gap" phi_journal_wait --timeout 1 --after "$cur" \
    SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok
phi_pg_promote
phi_wait_for --timeout 30 --what "the replica promoted" bash -c \
    "[ \"\$(\"$PHI_PG_BIN/psql\" -X -h '$PHI_PG_SOCK' -U postgres -d phi -tAc 'SELECT pg_is_in_recovery()')\" = f ]" ||
    phi_fail "the replica never left recovery"

# ---------------------------------------------------- on the new primary
phi_assert_eq "$(login hosta alice "$code")" PAM_AUTH_ERR \
    "after the failover the code accepted before the kill is refused (its watermark survived)"
phi_check "the watermark is at least that login's step" test "$(psql_val "SELECT watermark FROM totp_tokens WHERE state = 2")" -ge "$step"
phi_assert_eq "$(psql_val "SELECT state FROM elevation_requests WHERE id = '$id'")" 2 "the approval made before the kill is there (active)"
phi_check "every audit record acknowledged before the kill is there" \
    test "$(psql_val 'SELECT count(*) FROM audit_log')" -ge "$records"
phi_assert_eq "$(login hostb alice "$gap_code")" PAM_SUCCESS \
    "the daemons reconnected to the new primary by themselves: the code refused in the gap logs in now"
TOTP_LAST[alice]=$gap_step
phi_assert_eq "$(login hosta alice "$gap_code")" PAM_AUTH_ERR "and once only"
phi_check "hostb still lists alice in phi-dba" has_member hostb phi-dba alice
ctl hostb root status
phi_assert_eq "$(pair store_reachable)" yes "hostb's status: the store reachable" "$OUT"
ctl hosta root audit verify
phi_assert_eq "$RC" 0 "phictl audit verify passes after the failover" "$OUT"
phi_assert_contains "$OUT" "verified:    the live audit log" "the live log verified"

for h in "${HOSTS[@]}"; do
    phi_stop_pid "${PID[$h]}"
done

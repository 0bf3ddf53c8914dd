#!/usr/bin/env bash
# Crash safety of the audit log: ten times, the daemon is SIGKILLed during a
# burst of mixed audited operations -- parallel pam_driver logins, right
# (each code once) and wrong (unknown names, unique to the burst), elevation
# requests and their approvals through phictl, phictl reload -- then started
# again. After each restart every operation that was acknowledged (a login
# answered PAM_SUCCESS or PAM_AUTH_ERR, a phictl exit 0) has its record in
# the log (by user and event, by request id, by count for reloads), and
# `phictl audit verify` verifies the tree and the checkpoints against the
# journal's.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

command -v sqlite3 >/dev/null || phi_die "sqlite3 is missing; run ./scripts/setup"
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so
ROUNDS=${AUDIT_CRASH_ROUNDS:-10}

# The burst's unknown names each leave a failure counter; none may lock out.
TOTP_EXTRA_CONFIG=$'max_failures = 1000\nhost_max_failures = 1000000'
totp_setup
cat >>"$TOTP_DIR/group" <<'GROUPS'
ops-oncall:x:3100:alice,carol
ops-approvers:x:3101:bob
phi-ops:x:3102:
GROUPS
POLICY=$TOTP_DIR/policy.conf
cat >"$POLICY" <<'POLICY'
[access:all]
action = allow
users = *
services = *
hosts = *

[role:ops]
grant_group = phi-ops
eligible_groups = ops-oncall
approver_groups = ops-approvers
approvals = 1
max_duration = 1h
reason_required = no
approver_totp = no
hosts = *
POLICY
chmod 0644 "$POLICY"
sed -i "/^\[daemon\]/a policy = $POLICY" "$TOTP_CONF"
totp_stack phi-auth "auth required $PAM_PHI"
totp_daemon_start
# dave..judy log in right: each code once, so each user can at most once a
# 30-second step (and once ahead, a step early).
LOGIN_USERS=(dave erin frank grace heidi ivan judy)
for u in alice bob carol "${LOGIN_USERS[@]}"; do totp_enroll "$u"; done
for u in "${LOGIN_USERS[@]}"; do echo "${TOTP_LAST[$u]}" >"$PHI_TMP/last.$u"; done
db=$TOTP_DIR/phi.db
ACKS=$PHI_TMP/acks
: >"$ACKS"

ctl() { # USER ARGS...: phictl as USER; output in OUT, status in RC
    RC=0
    OUT=$(totp_phictl_as "$@" 2>&1) || RC=$?
}

# Workers: each writes what was acknowledged, one line each, to its own file.
wrong_logins() { # ROUND W
    local i=0 user res
    while [ ! -e "$PHI_TMP/stop" ]; do
        i=$((i + 1))
        user="r$1w$2n$i"
        res=$(totp_pam phi-auth "$user" --answer 123456)
        [ "$res" != PAM_AUTH_ERR ] || echo "auth_fail $user" >>"$PHI_TMP/ack.$1.w$2"
    done
}
right_logins() { # ROUND
    local u step code res
    while [ ! -e "$PHI_TMP/stop" ]; do
        for u in "${LOGIN_USERS[@]}"; do
            step=$(($(cat "$PHI_TMP/last.$u") + 1))
            [ "$step" -le $(($(totp_now_step) + 1)) ] || continue
            code=$(totp_code "$u" "$step")
            res=$(totp_pam phi-auth "$u" --answer "$code")
            if [ "$res" = PAM_SUCCESS ]; then
                echo "$step" >"$PHI_TMP/last.$u"
                echo "auth_ok $u" >>"$PHI_TMP/ack.$1.ok"
            fi
        done
        sleep 0.05
    done
}
elevations() { # ROUND
    local out id rc who
    while [ ! -e "$PHI_TMP/stop" ]; do
        for who in alice carol; do
            rc=0
            out=$(totp_phictl_as "$who" request ops --for 5m 2>&1) || rc=$?
            [ "$rc" = 0 ] || continue
            id=$(sed -n 's/^id  *//p' <<<"$out")
            echo "elevation_requested $id" >>"$PHI_TMP/ack.$1.elev"
            rc=0
            totp_phictl_as bob approve "$id" >/dev/null 2>&1 || rc=$?
            [ "$rc" != 0 ] || echo "elevation_approved $id" >>"$PHI_TMP/ack.$1.elev"
        done
    done
}
reloads() { # ROUND
    while [ ! -e "$PHI_TMP/stop" ]; do
        if totp_phictl_as root reload >/dev/null 2>&1; then
            echo reload >>"$PHI_TMP/ack.$1.reload"
        fi
        sleep 0.1
    done
}

acked_total=0
for round in $(seq 1 "$ROUNDS"); do
    rm -f "$PHI_TMP/stop"
    pids=()
    wrong_logins "$round" 1 & pids+=($!)
    wrong_logins "$round" 2 & pids+=($!)
    wrong_logins "$round" 3 & pids+=($!)
    right_logins "$round" & pids+=($!)
    elevations "$round" & pids+=($!)
    reloads "$round" & pids+=($!)
    # Let the burst run a while (0.6 to 1.5 s), then kill the daemon in it.
    sleep "$(printf '0.%d' $((6 + RANDOM % 9)))"
    phi_stop_pid --kill "$TOTP_DAEMON_PID"
    sleep 0.3
    touch "$PHI_TMP/stop"
    wait "${pids[@]}"
    cat "$PHI_TMP"/ack."$round".* >>"$ACKS" 2>/dev/null || true
    n=$(cat "$PHI_TMP"/ack."$round".* 2>/dev/null | wc -l)
    acked_total=$((acked_total + n))
    phi_log "round $round: $n operations acknowledged before the kill"
    rm -f /run/phiaccessd/socket /run/phiaccessd/pam
    totp_daemon_start

    # Every acknowledged operation so far has its record.
    sqlite3 "$db" "SELECT event || ' ' || user_name FROM audit_log WHERE event IN ('auth_fail', 'auth_ok');
                   SELECT event || ' ' || request_id FROM audit_log WHERE event LIKE 'elevation_%'" |
        sort -u >"$PHI_TMP/records"
    missing=$(grep -v '^reload$' "$ACKS" | sort -u | comm -23 - "$PHI_TMP/records")
    phi_assert_eq "$missing" "" "round $round: every acknowledged login and elevation step has its record"
    reloads_acked=$(grep -c '^reload$' "$ACKS" || true)
    reloads_logged=$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE event = 'policy_reload' AND actor = 'root'")
    phi_check "round $round: each of the $reloads_acked acknowledged reloads has its record ($reloads_logged)" \
        test "$reloads_logged" -ge "$reloads_acked"
    ctl root audit verify
    phi_assert_eq "$RC" 0 "round $round: the tree verifies after the restart" "$OUT"
done
phi_check "the bursts acknowledged operations ($acked_total)" test "$acked_total" -gt $((ROUNDS * 5))
phi_check "of every kind: right logins" grep -q '^auth_ok ' "$ACKS"
phi_check "wrong logins" grep -q '^auth_fail ' "$ACKS"
phi_check "approvals" grep -q '^elevation_approved ' "$ACKS"
phi_check "reloads" grep -q '^reload$' "$ACKS"
phi_pass "no acknowledged audit record lost in $ROUNDS kills"

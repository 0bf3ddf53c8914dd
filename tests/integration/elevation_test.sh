#!/usr/bin/env bash
# Just-in-time elevation against the real daemon: a request for a role that
# needs two approvers waits after one; the requester cannot approve it, an
# approver cannot decide twice; the second approval makes it a grant, which
# pam_phi's account check with `elevate` (sudo's stack) accepts and journals
# as sudo_escalation, and which revoke ends at once; a denial ends a request;
# the requester cancels one; a short grant expires on time, also across a
# daemon restart; a request nobody decides lapses after the role's pending
# lifetime; a role with approver_totp takes the approver's code once (a
# replay decides nothing); break-glass with the user's own code is a grant at
# once, journaled at CRIT, unreviewed until an approver reviews it. Each
# transition is checked in the journal with its fields.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
# shellcheck source-path=SCRIPTDIR source=nss_lib.bash
source "$(dirname "$0")/nss_lib.bash"
phi_harness_init "$@"
nss_init
# nss_phi where glibc looks for it, and the daemon's snapshots where it reads
# them: a grant shows through the real NSS path.
nss_install
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so

totp_setup
# alice, dave: may ask for the roles; bob, carol, erin: approve them.
cat >>"$TOTP_DIR/group" <<'GROUPS'
dba-oncall:x:3100:alice,dave
dba-approvers:x:3101:bob,carol,erin
phi-dba:x:3102:
phi-ops:x:3103:
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
approvals = 2
max_duration = 4h
pending_lifetime = 1m
approver_totp = no
hosts = *

[role:ops]
grant_group = phi-ops
eligible_groups = dba-oncall
approver_groups = dba-approvers
approvals = 1
max_duration = 1h
reason_required = no
approver_totp = yes
breakglass = yes
breakglass_max = 30m
hosts = *
POLICY
chmod 0644 "$POLICY"
sed -i "/^\[daemon\]/a policy = $POLICY" "$TOTP_CONF"
sed -i "s#^snapshot = .*#snapshot = $NSS_SNAPSHOT#" "$TOTP_CONF"
# Notifications: a command that keeps what it is given, one object a line.
NOTES=$TOTP_DIR/notes.jsonl
cat >"$TOTP_DIR/notify.sh" <<NOTIFY
#!/bin/sh
cat >>"$NOTES"
NOTIFY
chmod 0755 "$TOTP_DIR/notify.sh"
printf '\n[notify]\ncommand = %s\ntimeout = 5s\n' "$TOTP_DIR/notify.sh" >>"$TOTP_CONF"
totp_stack sudo "account required $PAM_PHI elevate"
totp_daemon_start
for u in alice bob erin; do totp_enroll "$u"; done

ctl() { # USER ARGS...: phictl as USER; stdout and stderr in OUT, status in RC
    RC=0
    OUT=$(totp_phictl_as "$@" 2>&1) || RC=$?
}
pair() { # KEY: its value in OUT (phictl's aligned KEY VALUE lines)
    sed -n "s/^$1  *//p" <<<"$OUT" | sed -n 1p
}
event() { # CURSOR EVENT REQUEST-ID: the journal entry (waits up to 10 s)
    phi_journal_wait --first --timeout 10 --after "$1" SYSLOG_IDENTIFIER=phiaccessd "PHI_EVENT=$2" \
        "PHI_REQUEST_ID=$3"
}
field() { # JSON FIELD
    phi_json_field "$2" <<<"$1"
}
sudo_account() { # USER: pam_phi account with elevate, as sudo's stack runs it
    totp_pam sudo "$1" --op account --tty pts/1
}

# ------------------------------------------------ a request nobody decides
ctl dave request dba --for 1h --reason "nobody will answer this"
phi_assert_eq "$RC" 0 "dave asks for dba"
lapsing=$(pair id)
lapse_t0=$SECONDS

# -------------------------------------------------- two approvers needed
cursor=$(phi_journal_cursor)
ctl alice request dba --for 2h --reason "reindex the orders table"
phi_assert_eq "$RC" 0 "alice asks for dba" "$OUT"
id=$(pair id)
phi_assert_match "$id" '^[0-9a-f]{12}$' "the request has a 12-digit id"
phi_assert_eq "$(pair state)" pending "it is pending"
phi_assert_eq "$(pair approvals)" 0/2 "with 0 of 2 approvals"
e=$(event "$cursor" elevation_requested "$id") || phi_fail "the request is journaled"
phi_assert_eq "$(field "$e" PHI_USER)" alice "elevation_requested: PHI_USER"
phi_assert_eq "$(field "$e" PHI_ROLE)" dba "elevation_requested: PHI_ROLE"
phi_assert_eq "$(field "$e" PHI_REASON)" "reindex the orders table" "elevation_requested: PHI_REASON"

ctl alice approve "$id"
phi_assert_eq "$RC" 1 "alice may not approve her own request"
phi_assert_contains "$OUT" "may not decide their own request" "and is told why"
ctl dave approve "$id"
phi_assert_eq "$RC" 1 "dave is no approver"
phi_assert_contains "$OUT" "approver groups" "and is told why"
phi_assert_eq "$(sudo_account alice)" PAM_PERM_DENIED "before a grant, sudo's account check refuses alice"
e=$(phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=sudo_denied PHI_USER=alice) ||
    phi_fail "the refusal is journaled as sudo_denied"
phi_assert_eq "$(field "$e" PHI_TTY)" pts/1 "sudo_denied: PHI_TTY"

ctl bob approve "$id"
phi_assert_eq "$RC" 0 "bob approves" "$OUT"
phi_assert_eq "$(pair state)" pending "one approval of two: still pending"
phi_assert_eq "$(pair approvals)" 1/2 "1 of 2"
ctl bob approve "$id"
phi_assert_eq "$RC" 1 "bob cannot approve twice"
phi_assert_contains "$OUT" "decided request $id already" "and is told why"
phi_assert_eq "$(sudo_account alice)" PAM_PERM_DENIED "one approval grants nothing"

ctl carol approve "$id"
phi_assert_eq "$RC" 0 "carol approves too" "$OUT"
phi_assert_eq "$(pair state)" active "two distinct approvers: the grant is active"
e=$(phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=elevation_approved "PHI_REQUEST_ID=$id" \
    PHI_ACTOR=carol) || phi_fail "the approval that made the grant is journaled"
phi_assert_eq "$(field "$e" PHI_APPROVALS)" 2/2 "elevation_approved: PHI_APPROVALS 2/2"
phi_assert_match "$(field "$e" PHI_EXPIRES)" '^20[0-9-]+T[0-9:]+Z$' "elevation_approved: PHI_EXPIRES"
ctl alice grants
phi_assert_contains "$OUT" "$id" "phictl grants lists the grant"
phi_assert_match "$OUT" "$id +alice +dba +active" "as alice's, for dba, active"

phi_assert_eq "$(sudo_account alice)" PAM_SUCCESS "with the grant, sudo's account check lets alice in"
# The grants file is published before the approval's answer leaves.
phi_assert_match "$(nss_run getent group phi-dba || true)" '^phi-dba:[^:]*:3102:alice$' \
    "getent group phi-dba lists alice, through glibc and nss_phi"
phi_assert_contains " $(nss_run getent initgroups alice) " " 3102 " "initgroups gives alice the grant's gid"
e=$(phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=sudo_escalation PHI_USER=alice) ||
    phi_fail "the escalation is journaled"
phi_assert_eq "$(field "$e" PHI_ROLE)" dba "sudo_escalation: PHI_ROLE"
phi_assert_eq "$(field "$e" PHI_REQUEST_ID)" "$id" "sudo_escalation: PHI_REQUEST_ID"
phi_assert_eq "$(sudo_account dave)" PAM_PERM_DENIED "dave, without a grant, is still refused"

ctl alice revoke "$id" --reason "done early"
phi_assert_eq "$RC" 0 "alice ends her grant" "$OUT"
phi_assert_eq "$(sudo_account alice)" PAM_PERM_DENIED "a revoked grant stops the next sudo at once"
phi_assert_not_contains "$(nss_run getent group phi-dba || true)" alice "after the revoke NSS no longer lists alice in phi-dba"
e=$(event "$cursor" elevation_revoked "$id") || phi_fail "the revoke is journaled"
phi_assert_eq "$(field "$e" PHI_ACTOR)" alice "elevation_revoked: PHI_ACTOR"
phi_assert_eq "$(field "$e" PHI_REASON)" "done early" "elevation_revoked: PHI_REASON"
ctl alice revoke "$id"
phi_assert_eq "$RC" 1 "a grant is revoked once"

# ---------------------------------------------------------- deny, cancel
ctl alice request dba --for 1h --reason "second try"
denied=$(pair id)
ctl erin deny "$denied"
phi_assert_eq "$RC" 2 "a denial without --reason is a usage error"
ctl erin deny "$denied" --reason "not during the audit"
phi_assert_eq "$RC" 0 "erin denies" "$OUT"
phi_assert_eq "$(pair state)" denied "a denial ends the request"
e=$(event "$cursor" elevation_denied "$denied") || phi_fail "the denial is journaled"
phi_assert_eq "$(field "$e" PHI_REASON)" "not during the audit" "elevation_denied: PHI_REASON"
ctl bob approve "$denied"
phi_assert_eq "$RC" 1 "a denied request cannot be approved after"

ctl alice request dba --for 1h --reason "third"
cancelled=$(pair id)
ctl bob cancel "$cancelled"
phi_assert_eq "$RC" 1 "only the requester cancels"
ctl alice cancel "$cancelled"
phi_assert_eq "$RC" 0 "alice cancels her request" "$OUT"
event "$cursor" elevation_cancelled "$cancelled" >/dev/null || phi_fail "the cancel is journaled"
ctl alice request nosuchrole --for 1h --reason x
phi_assert_contains "$OUT" "no role 'nosuchrole'" "an unknown role is refused by name"
ctl alice request dba --for 5h --reason x
phi_assert_contains "$OUT" "longer than role 'dba' allows" "a duration over the role's maximum is refused"
ctl alice request dba --for 1h
phi_assert_contains "$OUT" "needs a reason" "a role that wants a reason refuses a request without one"

# ------------------------------------- approver's code, replay, expiry
ctl alice request ops --for 4s
short=$(pair id)
ctl bob approve "$short" </dev/null
phi_assert_eq "$RC" 1 "ops asks approvers for a code: none given, nothing decided"
phi_assert_contains "$OUT" "asks approvers for a code" "phictl says so"
step=$(totp_fresh_step bob)
code=$(totp_code bob "$step")
ctl bob approve "$short" <<<"$code"
phi_assert_eq "$RC" 0 "bob approves with his code" "$OUT"
TOTP_LAST[bob]=$step
phi_assert_eq "$(pair state)" active "one approval: active"
phi_assert_eq "$(sudo_account alice)" PAM_SUCCESS "the 4-second grant lets alice sudo"
ctl alice request ops --for 1h
other=$(pair id)
ctl bob approve "$other" <<<"$code"
phi_assert_eq "$RC" 1 "the same code again decides nothing (replay)"
phi_assert_contains "$OUT" "wrong code" "phictl says the code was refused"
phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=totp_replay PHI_USER=bob PHI_SERVICE=phictl \
    >/dev/null || phi_fail "the replayed approval code is journaled as totp_replay"
e=$(phi_journal_wait --first --timeout 15 --after "$cursor" PHI_EVENT=elevation_expired "PHI_REQUEST_ID=$short") ||
    phi_fail "the 4-second grant expires by itself, journaled"
phi_assert_eq "$(field "$e" PHI_REASON)" expired "elevation_expired: PHI_REASON"
phi_assert_eq "$(sudo_account alice)" PAM_PERM_DENIED "after its expiry sudo is refused again"

# ------------------------------------- a grant expiring while the daemon is down
step=$(totp_fresh_step bob)
ctl bob approve "$other" <<<"$(totp_code bob "$step")"
phi_assert_eq "$RC" 0 "bob approves the other ops request" "$OUT"
TOTP_LAST[bob]=$step
ctl alice revoke "$other"
ctl alice request ops --for 5s
restart=$(pair id)
step=$(totp_fresh_step bob)
ctl bob approve "$restart" <<<"$(totp_code bob "$step")"
TOTP_LAST[bob]=$step
phi_assert_eq "$(pair state)" active "a 5-second grant"
totp_daemon_stop
sleep 6
cursor2=$(phi_journal_cursor)
totp_daemon_start
e=$(phi_journal_wait --first --timeout 10 --after "$cursor2" PHI_EVENT=elevation_expired \
    "PHI_REQUEST_ID=$restart") || phi_fail "a grant that ended while the daemon was down is expired at its start"
phi_assert_eq "$(sudo_account alice)" PAM_PERM_DENIED "and grants nothing after the restart"

# --------------------------------------------------------------- break-glass
ctl dave breakglass ops --reason "ehr down" </dev/null
phi_assert_eq "$RC" 1 "break-glass without a code: refused"
step=$(totp_fresh_step alice)
ctl alice breakglass ops --reason "ehr down, on call" --for 10m <<<"$(totp_code alice "$step")"
phi_assert_eq "$RC" 0 "alice breaks the glass with her code" "$OUT"
TOTP_LAST[alice]=$step
bg=$(pair id)
phi_assert_eq "$(pair state)" active "at once active"
e=$(event "$cursor2" breakglass "$bg") || phi_fail "break-glass is journaled" "$(phi_journal_json --after "$cursor2" SYSLOG_IDENTIFIER=phiaccessd | grep -i break)"
phi_assert_eq "$(field "$e" PRIORITY)" 2 "at CRIT"
phi_assert_eq "$(sudo_account alice)" PAM_SUCCESS "break-glass lets alice sudo"
ctl bob requests --all
phi_assert_match "$OUT" "$bg .*break-glass, unreviewed" "phictl requests shows it unreviewed"
ctl alice review "$bg" --note "fine"
phi_assert_eq "$RC" 1 "alice may not review her own break-glass"
ctl bob review "$bg" --note "checked with the on-call log"
phi_assert_eq "$RC" 0 "bob reviews it" "$OUT"
event "$cursor2" breakglass_reviewed "$bg" >/dev/null || phi_fail "the review is journaled"
ctl bob requests --all
phi_assert_not_contains "$OUT" "unreviewed" "reviewed, it is no longer flagged"
ctl alice requests --all
phi_assert_not_contains "$OUT" "dave" "a user sees only their own requests"

# --------------------------------------------------------- notifications
note_of() { # EVENT ID: the notification's JSON object for it, if any
    jq -c --arg e "$1" --arg id "$2" 'select(.event == $e and .request_id == $id)' "$NOTES" 2>/dev/null | sed -n 1p
}
for pair in "elevation_requested $id" "elevation_approved $id" "elevation_revoked $id" "elevation_denied $denied" \
            "elevation_cancelled $cancelled" "elevation_expired $short" "breakglass $bg"; do
    read -r ev rid <<<"$pair"
    phi_wait_for --timeout 10 --what "the $ev notification" test -n "$(note_of "$ev" "$rid")" ||
        phi_fail "the notify command got $ev for $rid" "$(cat "$NOTES" 2>/dev/null)"
done
# A lockout too: erin's code wrong as often as max_failures allows.
totp_stack phi-auth "auth required $PAM_PHI"
for _ in 1 2 3 4 5; do totp_pam phi-auth erin --answer 000000 >/dev/null; done
phi_wait_for --timeout 10 --what "the lockout notification" \
    bash -c "jq -e 'select(.event == \"lockout\" and .user == \"erin\")' '$NOTES' >/dev/null" ||
    phi_fail "the notify command got the lockout of erin" "$(cat "$NOTES")"
n=$(note_of elevation_requested "$id")
phi_assert_eq "$(jq -r '[.user, .role, .reason] | @tsv' <<<"$n")" $'alice\tdba\treindex the orders table' \
    "the notification carries the request's user, role and reason"
phi_assert_match "$(jq -r .time <<<"$n")" '^20[0-9-]+T[0-9:]+Z$' "and its time"

# ------------------------------------------------------- the lapsed request
while [ $((SECONDS - lapse_t0)) -lt 62 ]; do sleep 1; done
e=$(phi_journal_wait --first --timeout 15 PHI_EVENT=elevation_expired "PHI_REQUEST_ID=$lapsing") ||
    phi_fail "a request nobody decided lapses after the role's pending lifetime"
phi_assert_eq "$(field "$e" PHI_REASON)" pending_lifetime "elevation_expired: PHI_REASON pending_lifetime"
ctl bob approve "$lapsing"
phi_assert_contains "$OUT" "lapsed, not pending" "a lapsed request cannot be approved"
# --------------------------------------- a notify command that hangs delays nothing
totp_daemon_stop
cat >"$TOTP_DIR/notify.sh" <<'NOTIFY'
#!/bin/sh
exec sleep 600
NOTIFY
sed -i 's/^timeout = 5s$/timeout = 2s/' "$TOTP_CONF"
cursor3=$(phi_journal_cursor)
totp_daemon_start
for i in 1 2 3; do
    ctl alice request dba --for 1h --reason "hang $i"
    phi_assert_eq "$RC" 0 "with the notify command hanging, request $i is answered"
    ctl alice cancel "$(pair id)"
    phi_assert_eq "$RC" 0 "and cancelled"
done
phi_journal_wait --timeout 15 --after "$cursor3" SYSLOG_IDENTIFIER=phiaccessd \
    "MESSAGE=notification command $TOTP_DIR/notify.sh failed: killed after its 2 s timeout" >/dev/null ||
    phi_fail "the hanging command is killed at its timeout, and the failure journaled"
# ------------------------------------- one user's flood of elevation calls
# Each is a durable round, a record and an entry: past the per-uid budget a
# caller is refused before the verifier, and nobody else is held up.
cursor4=$(phi_journal_cursor)
busy=0
for _ in $(seq 1 35); do
    ctl dave cancel 0123456789ab
    case "$OUT" in *"too many elevation requests and decisions"*) busy=$((busy + 1)) ;; esac
done
phi_assert_eq "$([ "$busy" -ge 5 ] && echo yes)" yes "dave's calls past 30 in 10 s are refused ($busy were)"
phi_journal_wait --timeout 10 --after "$cursor4" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=access_denied \
    PHI_REASON=too_many_requests PHI_USER=dave >/dev/null ||
    phi_fail "the refusal is journaled as too_many_requests"
ctl alice request dba --for 1h --reason "after dave's flood"
phi_assert_eq "$RC" 0 "another user is served meanwhile" "$OUT"
ctl alice cancel "$(pair id)"
phi_assert_eq "$RC" 0 "and cancels" "$OUT"
phi_pass "elevation lifecycle checked"

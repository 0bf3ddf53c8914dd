#!/usr/bin/env bash
# A full directory refresh never holds up a login. With 160,000 users in the
# directory, `phictl sync --full` (paged, as on every Active Directory, which
# has no RFC 4533) replaces every identity in one long transaction; logins go
# on the whole time, through pam_phi (default timeout 3 s) with codes from
# oathtool, and each one gets its answer: a right code PAM_SUCCESS, a name
# without a token PAM_AUTH_ERR -- never PAM_AUTHINFO_UNAVAIL, which is what
# pam_phi says when the daemon did not answer within its timeout. (When the
# identities shared the store's file, the verifier's BEGIN IMMEDIATE waited
# for the refresh's write lock, some 3.3 s at this size: logins were denied.)
# PHI_REFRESH_USERS sets the directory's size (default 160000).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

users=${PHI_REFRESH_USERS:-160000}
suffix=dc=example,dc=org
# Local accounts with tokens; each can log in twice a step (now and the next).
TOTP_USERS=(alice bob carol dave erin frank grace heidi ivan judy kim leo mia ned olga pat quin rob sue tom)

phi_log "generating $users users"
phi_gen_ldif --suffix "$suffix" --users "$users" --groups 100 >"$PHI_TMP/dir.ldif"
PHI_SLAPD_TIMEOUT=120 phi_slapd_start "$suffix" "$PHI_TMP/dir.ldif"
rm -f "$PHI_TMP/dir.ldif"

# Wrong codes are counted; mallory's (no token) must not lock her out.
TOTP_EXTRA_CONFIG=$'max_failures = 1000\nhost_max_failures = 1000000'
totp_setup
# The directory is the private slapd, read in paged mode only.
sed -i -e "s|^uri = .*|uri = $PHI_LDAP_URI|" \
    -e "s|^tls = none|tls = none\nuser_base = ou=people,$suffix\ngroup_base = ou=groups,$suffix\nsync = paged\nnetwork_timeout = 60s\nrefresh_interval = 1d|" \
    "$TOTP_CONF"
totp_daemon_start
ctl() { "$PHI_BUILD_DIR/phiaccessd/phictl" "$@"; }
status_of() { ctl --json status | jq -r --arg k "$1" '.[$k]'; }
loaded() { [ "$(status_of full_refreshes)" -ge 1 ] 2>/dev/null; }
phi_wait_for --timeout 240 --interval 0.5 --what "the initial paged load" loaded ||
    phi_die "the initial load did not finish: $(ctl status 2>&1 | tail -n 5)"
before=$(status_of users)
phi_assert_match "$before" '^[0-9]+$' "the daemon holds the directory's users"
[ "$before" -ge $((users - 2)) ] || phi_die "only $before users loaded of $users"

totp_stack phi-auth "auth required $PHI_BUILD_DIR/pam_phi/pam_phi.so"
totp_stack other "auth required pam_deny.so" "account required pam_deny.so" \
    "password required pam_deny.so" "session required pam_deny.so"
for u in "${TOTP_USERS[@]}"; do
    totp_enroll "$u"
done

# The next usable step of USER (above its watermark, at most the next step),
# or nothing when both are used up.
usable_step() {
    local last=${TOTP_LAST[$1]:-0} cur
    cur=$(totp_now_step)
    if [ $((last + 1)) -le "$cur" ]; then
        echo "$cur"
    elif [ $((last + 1)) -le $((cur + 1)) ]; then
        echo $((last + 1))
    fi
}

results=$PHI_TMP/logins
: >"$results"
# login USER CODE EXPECTED: one login through pam_phi; appends
# "USER EXPECTED GOT MS" to $results.
login() {
    local t0 t1 got
    t0=$(date +%s%N)
    got=$(totp_pam phi-auth "$1" --answer "$2")
    t1=$(date +%s%N)
    echo "$1 $3 $got $(((t1 - t0) / 1000000))" >>"$results"
    [ "$got" = "$3" ]
}

# Logins go on until the refresh is over: round robin over the enrolled users
# while they have an unused step, otherwise a name with no token.
next=0
cur=$(phi_journal_cursor)
ctl sync --full >"$PHI_TMP/sync.out" 2>&1 &
sync_pid=$!
while kill -0 "$sync_pid" 2>/dev/null; do
    user=${TOTP_USERS[$next]}
    next=$(((next + 1) % ${#TOTP_USERS[@]}))
    step=$(usable_step "$user")
    if [ -n "$step" ]; then
        login "$user" "$(totp_code "$user" "$step")" PAM_SUCCESS || true
        grep -q "^$user PAM_SUCCESS PAM_SUCCESS " <(tail -n 1 "$results") && TOTP_LAST[$user]=$step
    else
        login mallory 123456 PAM_AUTH_ERR || true
    fi
done
sync_rc=0
wait "$sync_pid" || sync_rc=$?
phi_assert_eq "$sync_rc" 0 "phictl sync --full finished ($(tr '\n' ' ' <"$PHI_TMP/sync.out"))"
phi_journal_wait --first --timeout 10 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=ldap_sync \
    PHI_SYNC_MODE=paged PHI_OUTCOME=ok >"$PHI_TMP/sync.json" ||
    phi_die "no accepted paged refresh in the journal"
phi_log "refresh: $(phi_json_field MESSAGE <"$PHI_TMP/sync.json")"
phi_assert_eq "$(status_of users)" "$before" "the refresh kept every user"

n=$(wc -l <"$results")
good=$(awk '$2 == "PAM_SUCCESS"' "$results" | wc -l)
phi_log "$n logins during the refresh ($good with a right code); slowest $(sort -k4 -n "$results" | tail -n 1)"
# Overlap, not speed: the refresh must have been long enough to meet logins.
[ "$n" -ge 10 ] || phi_die "only $n logins overlapped the refresh; nothing was tested"
[ "$good" -ge 5 ] || phi_die "only $good logins with a right code overlapped the refresh"
bad=$(awk '$2 != $3' "$results")
phi_assert_eq "$bad" "" "every login during the refresh got its answer (none denied for want of one)"
phi_pass "logins were answered throughout a full refresh of $users users"

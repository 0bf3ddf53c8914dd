#!/usr/bin/env bash
# One local user cannot flood the journal nor take the request socket from
# everyone else (phiaccessd(8), LIMITS).
#  - uid 65534 sends refused requests (sync) as fast as the daemon answers for
#    10 s: at most PHI_SERVER_REFUSAL_BURST (10) of them are journaled per
#    10-s interval, plus one summary per interval with PHI_SUPPRESSED; written
#    + suppressed = what the client counted, and `phictl status` says the
#    same. Logins through pamtester and pam_phi in those seconds all have
#    their auth_ok.
#  - a user activates a token it does not have, as fast as it can for 10 s:
#    at most 10 activations a uid per interval reach the TOTP verifier (each
#    a journal entry), the rest are refused as too many, within the same
#    journal budget.
#  - uid 65534 opens and holds 600 connections: root's `phictl status` and
#    another user's request still succeed; uid 65534 keeps 32, the others get
#    an ERROR frame saying why, and that is journaled once per interval.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

# The documented limits (phiaccessd(8)).
INTERVAL=10 BURST=10 PER_UID=32 SELF_SERVICE=10
FLOOD_SECONDS=10

command -v pamtester >/dev/null || phi_die "pamtester is missing; run ./scripts/setup"
# The system python: a python3 earlier in PATH may live where uid 65534 cannot go.
[ -x /usr/bin/python3 ] || phi_die "/usr/bin/python3 is missing; run ./scripts/setup"
totp_setup
totp_daemon_start
totp_stack phi-auth "auth required $PHI_BUILD_DIR/pam_phi/pam_phi.so"
totp_stack other "auth required pam_deny.so" "account required pam_deny.so" \
    "password required pam_deny.so" "session required pam_deny.so"
login_users=(alice bob carol dave)
for u in "${login_users[@]}"; do
    totp_enroll "$u"
done
cp "$(dirname "$0")/flood.py" "$(dirname "$0")/phiwire.py" "$TOTP_DIR/"
chmod 0644 "$TOTP_DIR/flood.py" "$TOTP_DIR/phiwire.py"

as_nobody() {
    setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
}
status_get() {
    "$PHI_BUILD_DIR/phiaccessd/phictl" --json status | jq -r ".$1"
}
# pamtester_login USER CODE: a real login program's PAM stack (pam_phi), on
# the PAM socket; prints pamtester's exit status. The sanitizer build's module
# needs its runtimes loaded first (as totp_sshd_test.sh does for sshd); leaks
# of pamtester itself are not ours.
san=$(ldd "$PHI_BUILD_DIR/pam_phi/pam_phi.so" | awk '/libasan|libubsan/ { printf "%s%s", sep, $3; sep = " " }')
PAMTESTER_ENV=(env)
[ -z "$san" ] || PAMTESTER_ENV=(env "LD_PRELOAD=$san" "ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}")
pamtester_login() {
    local status=0
    printf '%s\n' "$2" | phi_ns_run --bind "$TOTP_DIR/pam.d/phi-auth:/etc/pam.d/phi-flood" -- \
        "${PAMTESTER_ENV[@]}" timeout 20 pamtester phi-flood "$1" authenticate >>"$PHI_TMP/pamtester.log" 2>&1 ||
        status=$?
    echo "$status"
}

# ------------------------------------------------------------ the flood
cur=$(phi_journal_cursor)
as_nobody /usr/bin/python3 "$TOTP_DIR/flood.py" refuse "$TOTP_SOCKET" "$FLOOD_SECONDS" >"$PHI_TMP/flood.out" &
flood_pid=$!
sleep 1
for u in "${login_users[@]}"; do
    step=$(totp_fresh_step "$u")
    phi_assert_eq "$(pamtester_login "$u" "$(totp_code "$u" "$step")")" 0 \
        "during the flood, $u logs in through pamtester and pam_phi"
    TOTP_LAST[$u]=$step
done
wait "$flood_pid" || phi_fail "the flooding client failed" "$(cat "$PHI_TMP/flood.out")"
read -r _ refusals _ seconds <"$PHI_TMP/flood.out"
rate=$(awk -v n="$refusals" -v s="$seconds" 'BEGIN { printf "%d", n / s }')
phi_log "uid 65534 got $refusals refusals in $seconds s ($rate a second)"
[ "$refusals" -gt $((20 * BURST)) ] || phi_fail "the client was too slow to test anything" "$refusals refusals"

# Before the summaries: the daemon's own counters.
journaled=$(status_get refusals_journaled)
suppressed=$(status_get refusals_suppressed)
phi_log "status: refusals_journaled $journaled, refusals_suppressed $suppressed"
phi_assert_eq "$((journaled + suppressed))" "$refusals" \
    "phictl status: refusals journaled + suppressed = the client's refusals"

# Stopping the daemon ends the last interval: its summary is written too.
totp_daemon_stop
entries=$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=access_denied PHI_CALLER_UID=65534)
single=$(printf '%s\n' "$entries" | jq -s '[.[] | select(.PHI_REASON != "rate_limited")] | length')
summaries=$(printf '%s\n' "$entries" | jq -s '[.[] | select(.PHI_REASON == "rate_limited")] | length')
summed=$(printf '%s\n' "$entries" | jq -s '[.[] | select(.PHI_REASON == "rate_limited") | .PHI_SUPPRESSED | tonumber] | add // 0')
said_written=$(printf '%s\n' "$entries" | jq -s '[.[] | select(.PHI_REASON == "rate_limited") | .PHI_JOURNALED | tonumber] | add // 0')
# The flood's seconds meet at most this many intervals (their ends are the
# daemon's, not the client's).
intervals=$(awk -v s="$seconds" -v i="$INTERVAL" 'BEGIN { printf "%d", int(s / i) + 2 }')
phi_log "journal: $single refusals and $summaries summaries (suppressed $summed) for $refusals refusals; bound $((intervals * (BURST + 1)))"
phi_check "at most $BURST refusals journaled a uid per interval ($single for $intervals intervals)" \
    test "$single" -le $((intervals * BURST))
phi_check "at most one summary a uid per interval ($summaries)" test "$summaries" -le "$intervals"
phi_check "at least one summary" test "$summaries" -ge 1
phi_assert_eq "$((single + summed))" "$refusals" "journaled + PHI_SUPPRESSED of the summaries = the client's refusals"
# A summary is written for an interval that suppressed some; an interval the
# flood only touched (its last, if the flood ended early in it) journals its
# few one by one and has none: only that interval's are not in PHI_JOURNALED.
phi_check "the summaries' PHI_JOURNALED ($said_written) counts the refusals journaled one by one ($single), but for an interval with nothing suppressed" \
    test "$said_written" -le "$single" -a $((single - said_written)) -le "$BURST"
phi_assert_eq "$(printf '%s\n' "$entries" | jq -r 'select(.PHI_REASON == "rate_limited") | .PHI_LIMIT' | sort -u)" \
    requests "the summaries are of refused requests"
for u in "${login_users[@]}"; do
    phi_assert_eq "$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok "PHI_USER=$u" |
        jq -s length)" 1 "$u's login during the flood has its auth_ok entry"
done

# ------------------------------- a user's own activations, as fast as it can
# Each activation with a wrong code reaches the TOTP verifier and ends in a
# journal entry: past SELF_SERVICE a uid and interval they are refused
# before it (EBUSY), and those refusals are journaled within the refusal
# budget. erin has no token.
totp_daemon_start
cur=$(phi_journal_cursor)
setpriv --reuid="${TOTP_UID[erin]}" --regid="${TOTP_UID[erin]}" --clear-groups -- \
    /usr/bin/python3 "$TOTP_DIR/flood.py" activate "$TOTP_SOCKET" "$FLOOD_SECONDS" >"$PHI_TMP/activate.out" ||
    phi_fail "the activating client failed" "$(cat "$PHI_TMP/activate.out")"
read -r _ busy _ served _ seconds <"$PHI_TMP/activate.out"
phi_log "erin: $served activations served by the verifier, $busy refused as too many, in $seconds s"
intervals=$(awk -v s="$seconds" -v i="$INTERVAL" 'BEGIN { printf "%d", int(s / i) + 2 }')
phi_check "at most $SELF_SERVICE activations a uid per interval reach the verifier ($served for $intervals intervals)" \
    test "$served" -le $((intervals * SELF_SERVICE))
phi_check "the rest are refused as too many ($busy)" test "$busy" -gt $((20 * BURST))
totp_daemon_stop
# Without a ticket the verifier notes the attempt (no PHI_EVENT); with one, an
# auth_fail. Either way one entry per activation served.
fails=$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd |
    jq -s '[.[] | select(.PHI_EVENT == "auth_fail" and .PHI_USER == "erin" or
                         .MESSAGE == "erin tried to enrol a token without a valid ticket")] | length')
phi_assert_eq "$fails" "$served" "each activation the verifier served has its entry, no more"
entries=$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=access_denied \
    "PHI_CALLER_UID=${TOTP_UID[erin]}")
single=$(printf '%s\n' "$entries" | jq -s '[.[] | select(.PHI_REASON == "too_many_attempts")] | length')
summed=$(printf '%s\n' "$entries" | jq -s '[.[] | select(.PHI_REASON == "rate_limited") | .PHI_SUPPRESSED | tonumber] | add // 0')
phi_log "journal: $fails verifier entries, $single refusals, $summed more counted in summaries"
phi_check "at most $BURST of the refusals journaled per interval ($single)" test "$single" -le $((intervals * BURST))
phi_assert_eq "$((single + summed))" "$busy" "journaled + PHI_SUPPRESSED = the activations refused as too many"

# ------------------------------------------------ one uid, 600 connections
totp_daemon_start
cur=$(phi_journal_cursor)
exec {hold_in}> >(as_nobody /usr/bin/python3 "$TOTP_DIR/flood.py" hold "$TOTP_SOCKET" 600 \
    >"$PHI_TMP/hold.out" 2>&1)
phi_wait_for --timeout 20 --what "600 connections open" grep -qx "open 600" "$PHI_TMP/hold.out" ||
    phi_fail "the holding client did not open its connections" "$(cat "$PHI_TMP/hold.out")"
phi_check "with uid 65534 holding 600 connections, root's phictl status succeeds" \
    "$PHI_BUILD_DIR/phiaccessd/phictl" status
phi_check "and so does bob's" totp_phictl_as bob status
phi_assert_eq "$(status_get connections_closed)" $((600 - PER_UID)) \
    "phictl status: the daemon closed all but $PER_UID of uid 65534's connections"
exec {hold_in}>&-
phi_wait_for --timeout 10 --what "hold report" grep -q '^closed' "$PHI_TMP/hold.out" ||
    phi_fail "no report from the holding client" "$(cat "$PHI_TMP/hold.out")"
phi_assert_eq "$(sed -n 2p "$PHI_TMP/hold.out")" "closed $((600 - PER_UID)) open $PER_UID" \
    "uid 65534 keeps $PER_UID connections"
phi_assert_eq "$(sed -n '3,$p' "$PHI_TMP/hold.out")" \
    "errno 87: connection closed: uid 65534 has $PER_UID connections to phiaccessd, the most one user may; its oldest idle one (this) was closed for its new one" \
    "each closed one got an ERROR frame saying why"
totp_daemon_stop
entries=$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=access_denied PHI_CALLER_UID=65534)
single=$(printf '%s\n' "$entries" | jq -s '[.[] | select(.PHI_REASON == "too_many_connections")] | length')
summed=$(printf '%s\n' "$entries" | jq -s '[.[] | select(.PHI_REASON == "rate_limited" and .PHI_LIMIT == "connections") | .PHI_SUPPRESSED | tonumber] | add // 0')
phi_log "journal: $single entries for the closed connections, $summed more counted in summaries"
phi_check "journaled once per interval (1 or 2 intervals: $single)" test "$single" -ge 1 -a "$single" -le 2
phi_assert_eq "$((single + summed))" $((600 - PER_UID)) "and the summaries count the rest"

# ------------------------------------- many uids: the reserve of root and admins
# 15 uids of 32 connections fill the 480 anyone may use. Root and an admin
# (frank, in phi-admins) get one of the 32 kept for them, closing nothing;
# bob, neither, gets his by closing the oldest idle connection of a uid that
# holds the most.
printf 'root:x:0:\nphi-admins:x:3000:frank\n' >"$TOTP_DIR/group"
totp_daemon_start
holders=()
for i in $(seq 1 15); do
    exec {fd}> >(setpriv --reuid=$((4000 + i)) --regid=$((4000 + i)) --clear-groups -- \
        /usr/bin/python3 "$TOTP_DIR/flood.py" hold "$TOTP_SOCKET" "$PER_UID" >"$PHI_TMP/pool.$i" 2>&1)
    holders+=("$fd")
    phi_wait_for --timeout 20 --what "uid $((4000 + i)) holding $PER_UID" grep -qx "open $PER_UID" "$PHI_TMP/pool.$i" ||
        phi_fail "a holding client did not open its connections" "$(cat "$PHI_TMP/pool.$i")"
done
phi_assert_eq "$(status_get connections)" 481 "480 connections held, and root's own from the reserve"
phi_assert_eq "$(status_get connections_closed)" 0 "root's connection closed none of the others"
phi_check "frank, an admin, is served from the reserve too" totp_phictl_as frank status
phi_assert_eq "$(status_get connections_closed)" 0 "and closed none"
phi_check "bob, neither root nor admin, is served with the 480 in use" totp_phictl_as bob status
phi_assert_eq "$(status_get connections_closed)" 1 "by closing one idle connection of a uid holding the most"
for fd in "${holders[@]}"; do
    exec {fd}>&-
done
totp_daemon_stop

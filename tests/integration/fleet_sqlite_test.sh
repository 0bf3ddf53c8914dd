#!/usr/bin/env bash
# Three daemons (hosts hosta, hostb, hostc) sharing one store, as a fleet
# does: each in its own mount and UTS namespace (its own hostname, sockets,
# NSS files, identity file, audit key), the shared part of the store one
# SQLite file in WAL mode that each opens through a link of its own. Shown:
#   - a request made on B and approved on A becomes a membership that glibc
#     and nss_phi show on B within a second or so (the change feed), and
#     pam_phi's elevate account check lets the user in on B; C, which the
#     role does not cover, shows no membership and refuses the check;
#   - a revoke on C ends it on B (membership gone, account check refused);
#   - a burst of appends from A and B at once (account checks, each a
#     durable round with its record): one audit tree, seqs gapless
#     and unique, `phictl audit verify` passes on every host, and an export
#     verifies offline with the fleet's keys (and not with one host's alone);
#   - a short grant whose expiry all three daemons' timers race for is
#     journaled as expired exactly once.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
# shellcheck source-path=SCRIPTDIR source=nss_lib.bash
source "$(dirname "$0")/nss_lib.bash"
# shellcheck source-path=SCRIPTDIR source=fleet-lib.bash
source "$(dirname "$0")/fleet-lib.bash"
phi_harness_init "$@"
command -v jq >/dev/null || phi_die "jq is missing; run ./scripts/setup"
command -v sqlite3 >/dev/null || phi_die "sqlite3 is missing; run ./scripts/setup"
nss_init
nss_install
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so
HOSTS=(hosta hostb hostc)

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

[access:burst]
action = allow
users = dave
services = phi-burst
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
totp_stack sudo "account required $PAM_PHI elevate" "session required $PAM_PHI elevate"
totp_stack phi-burst "account required $PAM_PHI"

sed -i "/^\[daemon\]/a policy = $POLICY" "$TOTP_CONF"
FLEET_EXTRA_AUDIT="checkpoint_records = 20"
fleet_setup "${HOSTS[@]}"

lacks_member() {
    ! has_member "$@"
}
sudo_account() { # HOST USER: pam_phi account with elevate on HOST
    on "$1" timeout 20 "$PHI_BUILD_DIR/tests/pam_driver" --confdir "$TOTP_DIR/pam.d" --service sudo \
        --user "$2" --op account --tty pts/1 2>>"$PHI_TMP/pam_driver.log" || true
}
count_events() { # EVENT REQUEST-ID: entries in the journal
    phi_journal_json SYSLOG_IDENTIFIER=phiaccessd "PHI_EVENT=$1" "PHI_REQUEST_ID=$2" | grep -c . || true
}

# The first start makes the store and the master key; the others share them.
host_start hosta
for h in hostb hostc; do host_start "$h"; done
phi_assert_eq "$(sqlite3 "$SHARED/phi.db" 'PRAGMA journal_mode')" wal "the shared store is in WAL mode"
for h in "${HOSTS[@]}"; do
    phi_check "$h has an identity file of its own" test -s "${DIR[$h]}/store/phi-identities.db"
done
phi_check_fails "the shared directory's own identity file was never written" test -s "$SHARED/phi-identities.db"
ctl hostb root status
phi_assert_eq "$RC" 0 "phictl status answers on hostb" "$OUT"

# ---------------------------------- a request on B, approved on A
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
phi_check "hosta's NSS lists her too" has_member hosta phi-dba alice
phi_assert_eq "$(sudo_account hostb alice)" PAM_SUCCESS "hostb's elevate check lets alice in"
# hostc is outside the role's hosts: its daemon knows of the grant (it reads
# the feed too, as the revoke below shows) but publishes no membership.
sleep 1.5
phi_assert_not_contains ",$(members hostc phi-dba)," ",alice," "hostc's NSS does not list alice (role dba does not cover hostc)"
phi_assert_eq "$(sudo_account hostc alice)" PAM_PERM_DENIED "hostc's elevate check refuses alice"

# --------------------------------------------- revoke on C ends it on B
# A session on hostb under the grant, as sudo's stack opens it (held open by
# pam_driver until the test releases it, or until hostb's daemon ends it).
cursor=$(phi_journal_cursor)
phi_spawn session-hostb on hostb "$PHI_BUILD_DIR/tests/pam_driver" --confdir "$TOTP_DIR/pam.d" --service sudo \
    --user alice --op account,open,close --tty pts/2 --hold "$PHI_TMP/release"
holder=$PHI_LAST_PID
e=$(phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=session_open "PHI_REQUEST_ID=$id") ||
    phi_fail "hostb records a session under the grant" "$(cat "$PHI_TMP/session-hostb.log")"
phi_assert_eq "$(sqlite3 "$SHARED/phi.db" \
    "SELECT host FROM sessions WHERE request_id = '$id'")" hostb "the session is hostb's"
cursor=$(phi_journal_cursor)
ctl hostc bob revoke "$id" --reason "done, from hostc"
phi_assert_eq "$RC" 0 "bob revokes on hostc" "$OUT"
if phi_wait_for --timeout 5 --what "alice out of phi-dba on hostb" -- lacks_member hostb phi-dba alice; then
    phi_pass "hostb's NSS no longer lists alice (revoked on hostc)"
else
    phi_fail "hostb still lists alice after the revoke on hostc" "$(members hostb phi-dba)"
fi
phi_assert_eq "$(sudo_account hostb alice)" PAM_PERM_DENIED "hostb's elevate check refuses alice after the revoke"
e=$(phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=session_ended "PHI_REQUEST_ID=$id") ||
    phi_fail "hostb ends the session of the grant revoked on hostc"
phi_assert_eq "$(phi_json_field PHI_REASON <<<"$e")" grant_revoked "session_ended: PHI_REASON grant_revoked"
phi_assert_eq "$(phi_json_field PHI_SIGNAL <<<"$e")" SIGTERM "session_ended: PHI_SIGNAL SIGTERM"
phi_wait_for --timeout 10 --what "the session's process gone" bash -c "! kill -0 $holder 2>/dev/null" ||
    phi_fail "the session's process outlived its grant"
phi_stop_pid "$holder"
phi_journal_wait --timeout 10 --after "$cursor" PHI_EVENT=elevation_revoked "PHI_REQUEST_ID=$id" >/dev/null ||
    phi_fail "the revoke is journaled"
phi_assert_eq "$(count_events elevation_revoked "$id")" 1 "the revoke is journaled once"

# ---------------------------------------- a burst of appends from A and B
before=$(sqlite3 "$SHARED/phi.db" 'SELECT COUNT(*) FROM audit_log')
# Account checks (each answered after its durable round with its
# access_granted record), not requests: those have a per-user budget.
burst() { # HOST N: N account checks on HOST
    local h=$1 i
    for ((i = 0; i < $2; i++)); do
        [ "$(on "$h" timeout 20 "$PHI_BUILD_DIR/tests/pam_driver" --confdir "$TOTP_DIR/pam.d" --service phi-burst \
            --user dave --op account 2>>"$PHI_TMP/pam_driver.log")" = PAM_SUCCESS ] ||
            { echo "account check $i on $h refused" >&2; return 1; }
    done
}
burst hosta 40 &
burst_a=$!
burst hostb 40 &
burst_b=$!
burst_rc=0
wait "$burst_a" || burst_rc=1
wait "$burst_b" || burst_rc=1
phi_assert_eq "$burst_rc" 0 "80 account checks, 40 on each of hosta and hostb at once, all answered"
after=$(sqlite3 "$SHARED/phi.db" 'SELECT COUNT(*) FROM audit_log')
phi_check "the burst appended at least 80 records" test "$((after - before))" -ge 80
phi_assert_eq "$(sqlite3 "$SHARED/phi.db" 'SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM audit_log')" \
    "$after|$after|0|$((after - 1))" "seqs are unique and gapless: 0 .. $((after - 1))"
for h in hosta hostb; do
    n=$(sqlite3 "$SHARED/phi.db" "SELECT COUNT(*) FROM audit_log WHERE host = '$h' AND event = 'access_granted'
        AND leaf LIKE '%\"service\":\"phi-burst\"%'")
    phi_assert_eq "$n" 40 "both hosts appended their records to the one log: $h's 40"
done
signers=$(sqlite3 "$SHARED/phi.db" 'SELECT note FROM audit_checkpoints' | sed -n 's/^— \([^ ]*\) .*/\1/p' | sort -u |
    tr '\n' ' ')
phi_assert_contains "$signers" "hosta/phi-audit" "hosta signed checkpoints of the shared log"
phi_assert_contains "$signers" "hostb/phi-audit" "hostb signed checkpoints of the shared log"
origins=$(sqlite3 "$SHARED/phi.db" 'SELECT note FROM audit_checkpoints' | grep -c -x -F "$FLEET_ORIGIN" || true)
phi_check "every checkpoint names the fleet's origin" test "$origins" = \
    "$(sqlite3 "$SHARED/phi.db" 'SELECT COUNT(*) FROM audit_checkpoints')"
for h in hosta hostb; do
    ctl "$h" root status
    phi_check "$h's status counts rounds that took the other's appends ($(pair audit_rounds_adopted))" \
        test "$(pair audit_rounds_adopted)" -gt 0
done
ctl hostb root status
phi_check "hostb's status counts other hosts' changes it reacted to ($(pair fleet_changes_applied))" \
    test "$(pair fleet_changes_applied)" -gt 0
phi_assert_eq "$(pair fleet_changes_seq)" "$(sqlite3 "$SHARED/phi.db" 'SELECT MAX(seq) FROM changes')" \
    "hostb has read the change feed to its end"
for h in "${HOSTS[@]}"; do
    ctl "$h" root audit verify
    phi_assert_eq "$RC" 0 "phictl audit verify passes on $h" "$OUT"
    phi_assert_contains "$OUT" "verified:    the live audit log" "$h: the live log verified"
    phi_assert_eq "$(sed -n 's/^origin: *//p' <<<"$OUT")" "$FLEET_ORIGIN" "$h: the log's origin is the fleet's"
    # One journal here for three hosts: each daemon checks its own journaled
    # checkpoints against the store and leaves the others' aside (they
    # prove nothing about what it saw), so the store being ahead of what
    # this host journaled is no "behind-journal".
    journaled=$(sed -n 's/^checkpoints: .*, \([0-9]*\) in the journal$/\1/p' <<<"$OUT")
    phi_check "$h: its own journaled checkpoints checked ($journaled)" test "${journaled:-0}" -ge 1
    phi_assert_match "$OUT" "ignored: +[1-9][0-9]* journal entries" "$h: the other hosts' journaled checkpoints set aside"
done
on hosta "$PHI_BUILD_DIR/phiaccessd/phiaccessd" --config "${DIR[hosta]}/phiaccessd.conf" \
    --verify-audit "$SHARED/phi.db" --key "${DIR[hosta]}/audit.key.pub" >"$PHI_TMP/verify-audit.out" 2>&1 ||
    phi_fail "phiaccessd --verify-audit with hosta's config" "$(cat "$PHI_TMP/verify-audit.out")"
phi_assert_contains "$(cat "$PHI_TMP/verify-audit.out")" "outcome:             ok" "phiaccessd --verify-audit: ok with the fleet's keys"
RC=0
on hosta "$PHI_BUILD_DIR/phiaccessd/phiaccessd" --verify-audit "$SHARED/phi.db" \
    --key "${DIR[hosta]}/audit.key.pub" --no-journal >"$PHI_TMP/verify-audit.out" 2>&1 || RC=$?
phi_assert_eq "$RC" 1 "without the fleet's config (one key, the key's origin), --verify-audit refuses" \
    "$(cat "$PHI_TMP/verify-audit.out")"
on hostb "$PHI_BUILD_DIR/phiaccessd/phictl" audit export >"$PHI_TMP/fleet.export" 2>"$PHI_TMP/export.err" ||
    phi_fail "phictl audit export on hostb" "$(cat "$PHI_TMP/export.err")"
RC=0
VOUT=$("$PHI_BUILD_DIR/phiaccessd/phictl" audit verify "$PHI_TMP/fleet.export" --key "${VKEY[hostc]}" 2>&1) || RC=$?
phi_assert_eq "$RC" 1 "the export does not verify with hostc's key alone (it signed none of its checkpoints)" "$VOUT"
RC=0
VOUT=$("$PHI_BUILD_DIR/phiaccessd/phictl" audit verify "$PHI_TMP/fleet.export" --key "$PHI_TMP/fleet.keys" 2>&1) || RC=$?
phi_assert_eq "$RC" 0 "the export verifies offline with the fleet's keys" "$VOUT"
RC=0
VOUT=$("$PHI_BUILD_DIR/phiaccessd/phictl" audit verify "$PHI_TMP/fleet.export" --key "${VKEY[hosta]}" \
    --key "${VKEY[hostb]}" --key "${VKEY[hostc]}" 2>&1) || RC=$?
phi_assert_eq "$RC" 0 "and with the three keys given one --key each" "$VOUT"

# ------------------------------- three timers race for one grant's expiry
ctl hostb alice request dba --for 3s --reason "short one"
short=$(pair id)
ctl hosta carol approve "$short"
phi_assert_eq "$RC" 0 "carol approves a 3-second grant on hosta" "$OUT"
phi_wait_for --timeout 5 --what "the short grant on hostb" -- has_member hostb phi-dba alice ||
    phi_fail "the short grant never showed on hostb"
expired() { [ "$(count_events elevation_expired "$short")" -ge 1 ]; }
phi_wait_for --timeout 15 --what "the short grant's expiry" -- expired || phi_fail "the short grant never expired"
# Every daemon's timer was due at the same second; give the late ones time.
sleep 2
phi_assert_eq "$(count_events elevation_expired "$short")" 1 "three daemons, one elevation_expired"
phi_assert_eq "$(sqlite3 "$SHARED/phi.db" \
    "SELECT COUNT(*) FROM audit_log WHERE event = 'elevation_expired' AND request_id = '$short'")" 1 \
    "and one audit record of it"
phi_assert_eq "$(sqlite3 "$SHARED/phi.db" "SELECT state FROM elevation_requests WHERE id = '$short'")" 5 \
    "the request is expired (state 5) and stays so"
phi_wait_for --timeout 5 --what "alice out of phi-dba on hostb" -- lacks_member hostb phi-dba alice ||
    phi_fail "the expired grant still shows on hostb"

for h in "${HOSTS[@]}"; do
    phi_stop_pid "${PID[$h]}"
done

# ------------------------------------------- a trusted_keys file with a typo
printf '# the fleet\n%s\nhostb/phi-audit+0000+nonsense\n' "${VKEY[hosta]}" >"$PHI_TMP/bad.keys"
sed "s#^trusted_keys = .*#trusted_keys = $PHI_TMP/bad.keys#" "${DIR[hosta]}/phiaccessd.conf" >"$PHI_TMP/bad.conf"
chmod 0600 "$PHI_TMP/bad.conf"
RC=0
OUT=$("$PHI_BUILD_DIR/phiaccessd/phiaccessd" --config "$PHI_TMP/bad.conf" --check-config 2>&1) || RC=$?
phi_assert_eq "$RC" 1 "--check-config refuses a trusted_keys file with a bad line"
phi_assert_contains "$OUT" "$PHI_TMP/bad.keys:3: not a verifier key" "and names it FILE:LINE"
RC=0
OUT=$("$PHI_BUILD_DIR/phiaccessd/phiaccessd" --config "${DIR[hosta]}/phiaccessd.conf" --check-config 2>&1) || RC=$?
phi_assert_eq "$RC" 0 "--check-config accepts the fleet's file" "$OUT"
phi_assert_contains "$OUT" "3 trusted audit keys" "and counts its keys"

#!/usr/bin/env bash
# The audit log's tamper evidence on a real log: a daemon writes it (logins
# right and wrong, an unknown user, a policy reload, an elevation request and
# its approval), an old copy is taken on the way with phictl backup; then
# `phictl audit verify` (the daemon checks its live store: auditors and root,
# anyone else refused) and, the daemon stopped, phiaccessd --verify-audit on
# copies of the store edited with sqlite3: one field of one record changed
# (with and without its stored hash made to match), a record deleted in the
# middle, the newest records deleted (naively, and with the saved tree and
# checkpoints made to match, which only the journal's checkpoints catch), two
# records swapped, the store replaced by the older copy, a checkpoint
# re-signed with another key. Each is detected naming the first bad seq; the
# untouched store verifies. Last, the live verification of a daemon started
# on a tampered store, and of one restored from the backup (phiaccessd
# --restore): the latter is the distinct outcome behind-journal.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

command -v sqlite3 >/dev/null || phi_die "sqlite3 is missing; run ./scripts/setup"
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so
DAEMON=$PHI_BUILD_DIR/phiaccessd/phiaccessd
MKEXPORT=$PHI_BUILD_DIR/tests/tools/phi-audit-mkexport

totp_setup
# judy audits; alice may ask for the role ops, bob approves it.
cat >>"$TOTP_DIR/group" <<'GROUPS'
phi-auditors:x:3200:judy
ops-oncall:x:3100:alice
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
for u in alice bob; do totp_enroll "$u"; done
db=$TOTP_DIR/phi.db
key=$TOTP_DIR/audit.key.pub
phi_check "the log's verifier key is beside the store" test -s "$key"

ctl() { # USER ARGS...: phictl as USER; stdout and stderr in OUT, status in RC
    RC=0
    OUT=$(totp_phictl_as "$@" 2>&1) || RC=$?
}
login() { # USER: a login with the user's next code
    local step code
    step=$(totp_fresh_step "$1")
    code=$(totp_code "$1" "$step")
    phi_assert_eq "$(totp_pam phi-auth "$1" --answer "$code")" PAM_SUCCESS "$1 logs in"
    TOTP_LAST[$1]=$step
}

# ------------------------------------------------------------ a real log
login alice
phi_assert_eq "$(totp_pam phi-auth alice --answer 000000)" PAM_AUTH_ERR "alice's wrong code is refused"
phi_assert_eq "$(totp_pam phi-auth nosuchuser --answer 123456)" PAM_AUTH_ERR "an unknown user is refused"
OLD=$PHI_TMP/old.db
ctl root backup "$OLD"
phi_assert_eq "$RC" 0 "an early backup (the older copy)" "$OUT"
old_size=$(sqlite3 "$OLD" "SELECT count(*) FROM audit_log")
phi_log "the older copy holds $old_size records"
login bob
ctl root reload
phi_assert_eq "$RC" 0 "phictl reload" "$OUT"
ctl alice request ops --for 30m
phi_assert_eq "$RC" 0 "alice asks for ops" "$OUT"
id=$(sed -n 's/^id  *//p' <<<"$OUT")
ctl bob approve "$id"
phi_assert_eq "$RC" 0 "bob approves it (a grant: a checkpoint at once)" "$OUT"
for i in 1 2 3; do
    phi_assert_eq "$(totp_pam phi-auth bob --answer 000000)" PAM_AUTH_ERR "bob's wrong code $i"
done
login alice
# The approval's checkpoint is journaled; wait until the last round's is.
phi_wait_for --timeout 10 --what "the records' checkpoint in the journal" bash -c \
    "journalctl --sync; [ \"\$(journalctl -o cat --output-fields=PHI_AUDIT_SIZE PHI_EVENT=checkpoint | sort -n | tail -n 1)\" -gt $old_size ]" ||
    phi_fail "no checkpoint of the records in the journal"

# ------------------------------------------------------ live verification
ctl judy audit verify
phi_assert_eq "$RC" 0 "an auditor verifies the live log" "$OUT"
phi_assert_contains "$OUT" "verified:    the live audit log" "saying it verified"
records=$(sed -n 's/^records: *//p' <<<"$OUT")
phi_assert_match "$records" '^[0-9]+$' "and how many records ($records)"
phi_assert_match "$OUT" "checkpoints: [1-9][0-9]* stored, [1-9][0-9]* in the journal" \
    "against the stored and the journal's checkpoints"
ctl root --json audit verify
phi_assert_eq "$RC" 0 "root verifies it too (--json)" "$OUT"
phi_assert_contains "$OUT" '"verified":true' "JSON says verified"
ctl dave audit verify
phi_assert_eq "$RC" 1 "dave, no auditor, is refused" "$OUT"
phi_assert_contains "$OUT" "permission denied: 'audit verify' is only for root or members of phi-auditors" \
    "with a clear message"
totp_daemon_stop

# ----------------------------------------------------- copies, tampered
n=$(sqlite3 "$db" "SELECT count(*) FROM audit_log")
phi_log "the log holds $n records, $(sqlite3 "$db" "SELECT count(*) FROM audit_checkpoints") checkpoints"
copy() { # NAME: a fresh copy of the stored log
    rm -f "$PHI_TMP/$1.db"*
    sqlite3 "$db" ".backup '$PHI_TMP/$1.db'"
    echo "$PHI_TMP/$1.db"
}
verify() { # STORE [ARGS]: phiaccessd --verify-audit; output in OUT, status in RC
    local store=$1
    shift
    RC=0
    OUT=$("$DAEMON" --verify-audit "$store" --key "$key" "$@" 2>&1) || RC=$?
}
expect_bad() { # WHAT OUTCOME SEQ TEXT
    phi_assert_eq "$RC" 1 "$1: detected (exit 1)" "$OUT"
    phi_assert_contains "$OUT" "outcome:             $2" "$1: outcome $2"
    phi_assert_contains "$OUT" "first bad seq:       $3" "$1: first bad seq $3"
    phi_assert_contains "$OUT" "$4" "$1: says what is wrong"
}

c=$(copy untouched)
verify "$c"
phi_assert_eq "$RC" 0 "the untouched store verifies" "$OUT"
phi_assert_contains "$OUT" "records verified:    $n" "all $n records"

# One field of one record: alice's name in a record of hers becomes mallory's.
s=$(sqlite3 "$db" "SELECT min(seq) FROM audit_log WHERE user_name = 'alice' AND seq > 3")
c=$(copy field)
sqlite3 "$c" "UPDATE audit_log SET leaf = replace(leaf, '\"user\":\"alice\"', '\"user\":\"mallory\"') WHERE seq = $s"
verify "$c"
expect_bad "one field of record $s changed" record "$s" "record $s was changed"
# The same, with its stored hash made to match (and the indexed copy): only
# the tree's root against the checkpoints shows it; the first seq no good
# checkpoint covers is named.
c=$(copy field2)
sqlite3 "$c" "UPDATE audit_log SET leaf = replace(leaf, '\"user\":\"alice\"', '\"user\":\"mallory\"'),
    user_name = 'mallory' WHERE seq = $s"
python3 - "$c" "$s" <<'PY'
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
leaf, = db.execute("SELECT leaf FROM audit_log WHERE seq = ?", (int(sys.argv[2]),)).fetchone()
h = hashlib.sha256(b"\0" + leaf.encode()).hexdigest()
db.execute("UPDATE audit_log SET leaf_hash = ? WHERE seq = ?", (h, int(sys.argv[2])))
db.commit()
PY
verify "$c"
phi_assert_eq "$RC" 1 "record $s changed with its hash: detected" "$OUT"
phi_assert_contains "$OUT" "outcome:             root" "by the root"
bad=$(sed -n 's/^first bad seq: *//p' <<<"$OUT")
phi_assert_match "$bad" '^[0-9]+$' "naming the first unproven seq ($bad)"
phi_check "at or before the changed record $s" test "$bad" -le "$s"
end=$(sed -n 's/.*one of records [0-9]* to \([0-9]*\).*/\1/p' <<<"$OUT")
phi_assert_match "$end" '^[0-9]+$' "the range of unproven records is named ($bad to $end)"
phi_check "and holds record $s" test "$end" -ge "$s"

# A record in the middle deleted.
m=$((n / 2))
c=$(copy middle)
sqlite3 "$c" "DELETE FROM audit_log WHERE seq = $m"
verify "$c"
expect_bad "record $m deleted" record "$m" "record $m is missing"

# The newest records deleted, naively: the saved tree still counts them.
k=$((n - 3))
c=$(copy tail)
sqlite3 "$c" "DELETE FROM audit_log WHERE seq >= $k"
verify "$c"
expect_bad "records $k.. deleted" truncated "$k" "were deleted from the end"
# ... and with the saved tree and the checkpoints made those of the older
# copy's size: the store is consistent in itself; the journal catches it.
c=$(copy tail2)
sqlite3 "$c" "ATTACH '$OLD' AS old;
    DELETE FROM audit_log WHERE seq >= $old_size;
    DELETE FROM audit_checkpoints WHERE size > $old_size;
    UPDATE audit_tree SET state = (SELECT state FROM old.audit_tree)"
verify "$c" --no-journal
phi_assert_eq "$RC" 0 "records $old_size.. deleted carefully: without the journal the store looks whole" "$OUT"
verify "$c"
expect_bad "records $old_size.. deleted carefully" behind-journal "$old_size" "the store is older than checkpoint"

# Two records swapped (with their hashes and indexed copies).
a=$((n / 3))
c=$(copy swap)
sqlite3 "$c" "UPDATE audit_log SET seq = -1 WHERE seq = $a;
    UPDATE audit_log SET seq = $a WHERE seq = $((a + 1));
    UPDATE audit_log SET seq = $((a + 1)) WHERE seq = -1"
verify "$c"
expect_bad "records $a and $((a + 1)) swapped" record "$a" "holds the leaf of record $((a + 1))"

# The whole store replaced by the older copy.
verify "$OLD" --no-journal
phi_assert_eq "$RC" 0 "the older copy is a sound log of its own" "$OUT"
verify "$OLD"
expect_bad "the store replaced by the older copy" behind-journal "$old_size" \
    "the store is older than checkpoint"
phi_assert_contains "$OUT" "(restored from a backup?)" "suggesting a restored backup"

# A checkpoint re-signed with another key (the newest stored).
"$MKEXPORT" keygen "$(sed 's/+.*//' "$key")" "$PHI_TMP/other.key" "$PHI_TMP/other.pub"
cs=$(sqlite3 "$db" "SELECT max(size) FROM audit_checkpoints")
prev=$(sqlite3 "$db" "SELECT coalesce(max(size), 0) FROM audit_checkpoints WHERE size < $cs")
c=$(copy resign)
sqlite3 "$db" "SELECT note FROM audit_checkpoints WHERE size = $cs" >"$PHI_TMP/note"
"$MKEXPORT" resign "$PHI_TMP/other.key" <"$PHI_TMP/note" >"$PHI_TMP/note.forged"
python3 - "$c" "$cs" "$PHI_TMP/note.forged" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE audit_checkpoints SET note = ? WHERE size = ?", (open(sys.argv[3]).read(), int(sys.argv[2])))
db.commit()
PY
verify "$c"
expect_bad "checkpoint $cs re-signed with another key" signature "$prev" \
    "the stored checkpoint of $cs records is not one of this log"

# ------------------------------------- live, on a tampered store; restored
cp "$db" "$PHI_TMP/kept.db"
rm -f "$db" "$db-wal" "$db-shm"
sqlite3 "$PHI_TMP/middle.db" ".backup '$db'"
totp_daemon_start
ctl judy audit verify
phi_assert_eq "$RC" 1 "the live verification of a store with record $m deleted fails" "$OUT"
phi_assert_contains "$OUT" "first bad seq $m" "naming seq $m"
phi_assert_contains "$OUT" "record $m is missing" "and what is wrong"
ctl judy --json audit verify
phi_assert_contains "$OUT" "\"bad_seq\":$m" "--json gives bad_seq"
phi_assert_contains "$OUT" '"outcome":"record"' "and the outcome"
totp_daemon_stop

rm -f "$db" "$db-wal" "$db-shm"
sqlite3 "$PHI_TMP/kept.db" ".backup '$db'"
RC=0
OUT=$("$DAEMON" --config "$TOTP_CONF" --restore "$OLD" 2>&1) || RC=$?
phi_assert_eq "$RC" 0 "the older copy restored (phiaccessd --restore)" "$OUT"
verify "$db" --no-journal
phi_assert_eq "$RC" 0 "the restored store's tree verifies in itself" "$OUT"
phi_assert_contains "$OUT" "records verified:    $old_size" "all $old_size records of the backup"
totp_daemon_start
login alice
ctl judy audit verify
phi_assert_eq "$RC" 1 "after a restore the live verification fails (exit 1: tamper evidence)" "$OUT"
phi_assert_contains "$OUT" "NOT verified (behind-journal)" "as behind-journal"
phi_assert_contains "$OUT" "the store is older than checkpoint" "saying the store is older than the journal"
phi_assert_contains "$OUT" "(restored from a backup?)" "and suggesting a restore"
# The restored store has grown since (the login): its new records are its
# own; what no journal checkpoint covers is named, at or past the backup's end.
bad=$(sed -n 's/.*first bad seq \([0-9]*\):.*/\1/p' <<<"$OUT")
phi_assert_match "$bad" '^[0-9]+$' "naming the first seq the journal contradicts ($bad)"
phi_check "at or past the backup's end (seq $old_size)" test "$bad" -ge "$old_size"
totp_daemon_stop
phi_pass "audit tamper evidence checked"

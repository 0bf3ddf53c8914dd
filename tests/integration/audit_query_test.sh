#!/usr/bin/env bash
# The auditor's side of the audit log against the real daemon: real events
# (logins that pass and fail, an elevation request approved, used by sudo's
# account check and revoked, a policy reload), then phictl audit: a
# non-auditor is refused with a message naming the group, and the refusal is
# journaled and recorded; the auditor's queries by user, actor, role, event,
# host and time range each return exactly the records the journal has for
# them, with their fields; table, JSON and CSV say the same; each query is
# itself in the log; `audit request ID` is the request's life in order;
# `audit export` (all, and a --since range) verifies offline with the log's
# public key, and each tampering with an export is caught at its first bad
# record.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so
command -v jq >/dev/null || phi_die "jq is missing; run ./scripts/setup"

totp_setup
# alice may ask for dba, bob approves, grace audits; dave is nobody special.
cat >>"$TOTP_DIR/group" <<'GROUPS'
dba-oncall:x:3100:alice
dba-approvers:x:3101:bob
phi-dba:x:3102:
phi-auditors:x:3103:grace
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
approver_totp = no
hosts = *
POLICY
chmod 0644 "$POLICY"
sed -i "/^\[daemon\]/a policy = $POLICY" "$TOTP_CONF"
totp_stack phi-auth "auth required $PAM_PHI"
totp_stack sudo "account required $PAM_PHI elevate"
totp_stack other "auth required pam_deny.so" "account required pam_deny.so" \
    "password required pam_deny.so" "session required pam_deny.so"
totp_daemon_start
totp_enroll alice
HOST=$(hostname)

ctl() { # USER ARGS...: phictl as USER; stdout in OUT, stderr in ERR, status in RC
    RC=0
    OUT=$(totp_phictl_as "$@" 2>"$PHI_TMP/ctl.err") || RC=$?
    ERR=$(cat "$PHI_TMP/ctl.err")
}
pair() { # KEY: its value in OUT (phictl's aligned KEY VALUE lines)
    sed -n "s/^$1  *//p" <<<"$OUT" | sed -n 1p
}
# The journal's events (not checkpoints, which are no records) for matches,
# one event name a line, in journal order.
journal_events() {
    phi_journal_json SYSLOG_IDENTIFIER=phiaccessd "$@" |
        jq -r 'select(.PHI_EVENT != null and .PHI_EVENT != "checkpoint") | .PHI_EVENT'
}
# grace's query as JSON, the event names in seq order.
audit_events() {
    ctl grace audit "$@" --format json
    phi_assert_eq "$RC" 0 "phictl audit $* runs for the auditor" "$ERR"
    jq -r '.[].event' <<<"$OUT"
}
# Polls until the audit log has caught up with the journal for these matches
# (events of other threads reach the log in the verifier's next round).
settle() { # QUERY ARGS -- JOURNAL MATCHES
    local q=() j=() seen=0 a b
    for x in "$@"; do
        if [ "$x" = -- ]; then seen=1; elif [ "$seen" = 0 ]; then q+=("$x"); else j+=("$x"); fi
    done
    for _ in $(seq 50); do
        a=$(journal_events "${j[@]}" | sort)
        b=$(ctl grace audit "${q[@]}" --format json && jq -r '.[].event' <<<"$OUT" | sort)
        [ "$a" = "$b" ] && return 0
        sleep 0.1
    done
    phi_fail "the audit log has the journal's events for ${q[*]}" "journal: $a / audit: $b"
}

# ------------------------------------------------------------- real events
step=$(totp_fresh_step alice)
phi_assert_eq "$(totp_pam phi-auth alice --answer "$(totp_code alice "$step")")" PAM_SUCCESS "alice logs in"
TOTP_LAST[alice]=$step
phi_assert_eq "$(totp_pam phi-auth alice --answer 000000)" PAM_AUTH_ERR "a wrong code fails"
phi_assert_eq "$(totp_pam sudo alice --op account --tty pts/1)" PAM_PERM_DENIED "sudo without a grant is refused"

ctl alice request dba --for 1h --reason "reindex the orders table"
phi_assert_eq "$RC" 0 "alice asks for dba" "$ERR"
id=$(pair id)
phi_assert_match "$id" '^[0-9a-f]{12}$' "the request has an id"
ctl bob approve "$id" --reason "go ahead"
phi_assert_eq "$RC" 0 "bob approves" "$ERR"
phi_assert_eq "$(totp_pam sudo alice --op account --tty pts/1)" PAM_SUCCESS "with the grant, sudo lets alice in"
ctl alice revoke "$id" --reason "done early"
phi_assert_eq "$RC" 0 "alice ends her grant" "$ERR"
phi_journal_wait --timeout 10 PHI_EVENT=elevation_revoked "PHI_REQUEST_ID=$id" >/dev/null ||
    phi_fail "the revoke is journaled"

# A time range holding the policy reload: T0 and T1 whole seconds around it.
sleep 1.1
T0=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ctl root reload
phi_assert_eq "$RC" 0 "root reloads the policy" "$ERR"
phi_journal_wait --timeout 10 PHI_EVENT=policy_reload >/dev/null || phi_fail "the reload is journaled"
sleep 1.1
T1=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# -------------------------------------------------------- who may ask
cursor=$(phi_journal_cursor)
ctl dave audit --user alice
phi_assert_eq "$RC" 1 "dave, no auditor, is refused"
phi_assert_eq "$OUT" "" "and shown nothing"
phi_assert_contains "$ERR" "audit queries are for the auditor group phi-auditors; you are dave" \
    "with a message naming the group"
phi_assert_eq "$(wc -l <<<"$ERR")" 1 "on one line"
e=$(phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=access_denied PHI_USER=dave) ||
    phi_fail "the refusal is journaled"
phi_assert_eq "$(phi_json_field PHI_VERB <<<"$e")" audit "access_denied: PHI_VERB"
phi_check_fails "the refused query is not journaled as a query" phi_journal_wait --timeout 1 --after "$cursor" \
    PHI_EVENT=audit_query PHI_ACTOR=dave
ctl dave audit export
phi_assert_eq "$RC" 1 "dave may not export either"
phi_assert_contains "$ERR" "auditor group phi-auditors" "and is told why"
ctl root audit --event policy_reload --format json
phi_assert_eq "$RC" 0 "root may query" "$ERR"
phi_assert_eq "$(jq -r '.[0].actor' <<<"$OUT")" start "the policy the daemon started with is in the log"
# A page after the first needs the seal of the daemon's own cursor: asked
# for by hand, "page two" from seq 0 would read the log with no audit_query.
cursor=$(phi_journal_cursor)
wire=$(setpriv --reuid="${TOTP_UID[grace]}" --regid="${TOTP_UID[grace]}" --clear-groups -- \
    /usr/bin/python3 "$PHI_SOURCE_DIR/tests/integration/audit_cursor.py" /run/phiaccessd/socket)
for c in query-unsealed query-forged export-forged; do
    phi_assert_contains "$(grep "^$c " <<<"$wire")" "$c ERROR 22: this page's cursor was not given to you" \
        "$c: a continuation without the daemon's seal is refused"
done
phi_check_fails "and nothing was read without its query journaled" phi_journal_wait --timeout 1 \
    --after "$cursor" PHI_EVENT=audit_query PHI_ACTOR=grace

# ------------------------------------------------------------ the filters
settle --user alice -- PHI_USER=alice
settle --actor bob -- PHI_ACTOR=bob
settle --role dba -- PHI_ROLE=dba
settle --event auth_fail -- PHI_EVENT=auth_fail
settle --user dave --event access_denied -- PHI_USER=dave PHI_EVENT=access_denied

ctl grace audit --user alice --event auth_fail --format json
phi_assert_eq "$(jq length <<<"$OUT")" 1 "one failed login of alice"
phi_assert_eq "$(jq -r '.[0].service' <<<"$OUT")" phi-auth "auth_fail: service"
phi_assert_eq "$(jq -r '.[0].user' <<<"$OUT")" alice "auth_fail: user"
phi_assert_eq "$(jq -r '.[0].host' <<<"$OUT")" "$HOST" "auth_fail: host"
phi_assert_match "$(jq -r '.[0].time' <<<"$OUT")" '^20[0-9-]+T[0-9:]+\.[0-9]{6}Z$' "auth_fail: time"
ctl grace audit --event elevation_approved --format json
phi_assert_eq "$(jq length <<<"$OUT")" 1 "one approval"
phi_assert_eq "$(jq -r '.[0] | [.user, .actor, .role, .request_id] | join(" ")' <<<"$OUT")" "alice bob dba $id" \
    "elevation_approved: user, actor, role, request"
phi_assert_match "$(jq -r '.[0].expires' <<<"$OUT")" '^[0-9]{10}$' "elevation_approved: expires"
ctl grace audit --actor bob --format json
phi_assert_eq "$(jq -r '[.[] | select(.actor != "bob")] | length' <<<"$OUT")" 0 "--actor bob: only bob's"
ctl grace audit --role dba --format json
phi_assert_eq "$(jq -r '[.[] | select(.role != "dba")] | length' <<<"$OUT")" 0 "--role dba: only dba's"
phi_assert_contains "$(jq -r '.[].event' <<<"$OUT" | tr '\n' ' ')" "sudo_escalation" "with alice's sudo use"

# Host: every record is this daemon's.
a=$(audit_events --user alice | tr '\n' ' ')
b=$(audit_events --user alice --host "$HOST" | tr '\n' ' ')
phi_assert_eq "$b" "$a" "--host (this host) keeps every record"
phi_assert_eq "$(audit_events --host db9.nowhere.example)" "" "--host (another) none"

# Time: the reload alone between T0 and T1 (of the events this test made).
ctl grace audit --since "$T0" --until "$T1" --format json
phi_assert_eq "$RC" 0 "a time range" "$ERR"
phi_assert_eq "$(jq -r '[.[] | select(.event != "ldap_sync")] | map(.event) | join(" ")' <<<"$OUT")" \
    policy_reload "--since T0 --until T1: the reload"
phi_assert_eq "$(jq -r '.[] | select(.event == "policy_reload") | .actor' <<<"$OUT")" root "policy_reload: actor"
phi_assert_eq "$(audit_events --until "$T0" --event policy_reload)" policy_reload \
    "--until T0: before the reload, only the start's"
phi_assert_eq "$(audit_events --since "$T1" --event policy_reload)" "" "--since T1: after it"
phi_assert_eq "$(audit_events --since -1h --event policy_reload | tr '\n' ' ')" "policy_reload policy_reload " \
    "--since -1h: relative (the start's and the reload)"
phi_assert_eq "$(audit_events --since "$T0" --until "$T1" --user alice)" "" "the range and another filter"
ctl grace audit --since yesterday
phi_assert_eq "$RC" 2 "a time that is none is a usage error"
phi_assert_contains "$ERR" "ISO 8601" "and says what a time is"

# ------------------------------------------------------------ the formats
ctl grace audit --user alice --format json
json=$OUT
ctl grace audit --user alice --format csv
csv=$OUT
ctl grace audit --user alice
table=$OUT
phi_assert_eq "$(python3 -c '
import csv, io, json, sys
rows = list(csv.DictReader(io.StringIO(sys.argv[1], newline="")))
recs = json.loads(sys.argv[2])
assert len(rows) == len(recs), (len(rows), len(recs))
for r, j in zip(rows, recs):
    for k in ("seq", "event", "user", "actor", "role", "request_id", "service", "rhost", "reason", "host"):
        assert r[k] == str(j.get(k, "")), (k, r[k], j.get(k))
    assert r["time"] == j["time"]
print("ok", len(rows))
' "$csv" "$json")" "ok $(jq length <<<"$json")" "CSV and JSON hold the same records"
phi_assert_eq "$(head -c 100 <<<"$csv" | sed -n 1p | tr -d '\r')" \
    "time,seq,event,user,actor,role,request_id,service,rhost,tty,rule,reason,expires,host,target,command" "CSV header"
phi_assert_match "$(sed -n 1p <<<"$table")" '^TIME +SEQ +EVENT +USER +ACTOR +ROLE +REQUEST +SERVICE +RHOST +REASON$' \
    "table header"
phi_assert_eq "$(($(wc -l <<<"$table") - 1))" "$(jq length <<<"$json")" "a table row per record"
phi_assert_match "$table" "auth_fail +alice +- +- +- +phi-auth" "the failed login in the table"
# A reason with a comma and quotes, quoted as RFC 4180 says.
ctl alice request dba --for 1h --reason 'say "when", please'
id2=$(pair id)
ctl alice cancel "$id2"
settle request "$id2" -- "PHI_REQUEST_ID=$id2"
ctl grace audit --request-id "$id2" --format csv
phi_assert_eq "$RC" 2 "an unknown option is a usage error"
ctl grace audit request "$id2" --format csv
phi_assert_contains "$OUT" '"say ""when"", please"' "a CSV field with quotes and a comma is quoted"
phi_assert_eq "$(python3 -c '
import csv, io, sys
rows = list(csv.DictReader(io.StringIO(sys.argv[1], newline="")))
print(rows[0]["reason"])' "$OUT")" 'say "when", please' "and reads back"
ctl grace --json audit request "$id2"
phi_assert_eq "$(jq -r '.[0].reason' <<<"$OUT")" 'say "when", please' "--json: JSON"

# ------------------------------------------- the query is itself in the log
cursor=$(phi_journal_cursor)
ctl grace audit --user alice --event auth_ok
e=$(phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=audit_query PHI_ACTOR=grace) ||
    phi_fail "the query is journaled"
phi_assert_eq "$(phi_json_field PHI_REASON <<<"$e")" "user=alice event=auth_ok" "audit_query: PHI_REASON"
found=""
for _ in $(seq 50); do
    ctl grace audit --actor grace --event audit_query --format json
    found=$(jq -r '.[] | select(.reason == "user=alice event=auth_ok") | .event' <<<"$OUT")
    [ -n "$found" ] && break
    sleep 0.1
done
phi_assert_eq "$found" audit_query "the next query sees the previous one in the log"

# ------------------------------------------------- a request's whole life
ctl grace audit request "$id" --format json
phi_assert_eq "$(jq -r 'map(.event) | join(" ")' <<<"$OUT")" \
    "$(journal_events "PHI_REQUEST_ID=$id" | tr '\n' ' ' | sed 's/ $//')" \
    "audit request: the journal's events of the request, in order"
phi_assert_eq "$(jq -r 'map(.event) | join(" ")' <<<"$OUT")" \
    "elevation_requested elevation_approved sudo_escalation elevation_revoked" \
    "request, approval, the sudo use, revoke"
phi_assert_eq "$(jq -r '[.[].seq] == ([.[].seq] | sort)' <<<"$OUT")" true "in seq order"
phi_assert_eq "$(jq -r '.[2] | [.user, .service, .tty] | join(" ")' <<<"$OUT")" "alice sudo pts/1" \
    "the sudo use: user, service, tty"
phi_assert_eq "$(jq -r '.[3].reason' <<<"$OUT")" "done early" "the revoke's reason"
ctl grace audit request "$id"
phi_assert_match "$(sed -n 2p <<<"$OUT")" "elevation_requested +alice" "table: the request first"
ctl grace audit request nothex
phi_assert_eq "$RC" 2 "a request id that is none"

# ------------------------------------------------------------ exports
KEY=$(cat "$TOTP_DIR/audit.key.pub")
ctl grace audit export
phi_assert_eq "$RC" 0 "grace exports the whole log" "$ERR"
printf '%s\n' "$OUT" >"$PHI_TMP/all.jsonl"
phi_assert_contains "$ERR" "exported" "phictl says what it exported"
ctl grace audit verify "$PHI_TMP/all.jsonl" --key "$KEY"
phi_assert_eq "$RC" 0 "the export verifies offline" "$OUT $ERR"
phi_assert_contains "$OUT" "records:     " "and counts its records"
n_all=$(($(grep -c '^{"hash"' "$PHI_TMP/all.jsonl")))
phi_assert_eq "$(sed -n 1p "$PHI_TMP/all.jsonl" | jq -r .first)" 0 "the whole log starts at seq 0"
# It ends with the newest checkpoint, and holds this export's own audit_query.
phi_assert_match "$(tail -n 1 "$PHI_TMP/all.jsonl")" '^\{"checkpoint":' "the last line is a checkpoint"
phi_assert_contains "$(grep '^{"hash"' "$PHI_TMP/all.jsonl" | jq -r .leaf.reason)" "export" \
    "the export's own audit_query is in it"
ctl grace --json audit verify "$PHI_TMP/all.jsonl" --key "$TOTP_DIR/audit.key.pub"
phi_assert_eq "$(jq -r .records <<<"$OUT")" "$n_all" "every record verified"

ctl grace audit export --since "$T0"
phi_assert_eq "$RC" 0 "an export from T0" "$ERR"
printf '%s\n' "$OUT" >"$PHI_TMP/since.jsonl"
first=$(sed -n 1p "$PHI_TMP/since.jsonl" | jq -r .first)
phi_assert_eq "$(sed -n 2p "$PHI_TMP/since.jsonl" | jq -r .leaf.seq)" "$first" "its first record is seq first"
phi_assert_eq "$(grep '^{"hash"' "$PHI_TMP/since.jsonl" | jq -r .leaf.event | grep -c policy_reload)" 1 \
    "it starts at or before the reload"
phi_assert_eq "$(grep '^{"hash"' "$PHI_TMP/since.jsonl" | jq -r .leaf.request_id | grep -c "$id" || true)" 0 \
    "and after the first elevation's records"
[ "$first" -gt 0 ] || phi_fail "a --since export starts past seq 0 ($first)"
ctl grace audit verify "$PHI_TMP/since.jsonl" --key "$KEY"
phi_assert_eq "$RC" 0 "the range verifies with the tree of the records before it" "$OUT $ERR"
ctl grace audit export --since "$T0" --until "$T1"
phi_assert_eq "$RC" 0 "an export of a closed range" "$ERR"
printf '%s\n' "$OUT" >"$PHI_TMP/range.jsonl"
ctl grace audit verify "$PHI_TMP/range.jsonl" --key "$KEY"
phi_assert_eq "$RC" 0 "a closed range verifies (the consistency proof to the newest checkpoint)" "$OUT $ERR"

# ----------------------------------------------------- tampered exports
tamper() { # NAME PYTHON: the script edits lines (a list of the export's lines)
    python3 - "$PHI_TMP/all.jsonl" "$PHI_TMP/$1.jsonl" "$2" <<'PY'
import json, sys
src, dst, code = sys.argv[1:]
lines = open(src).read().split("\n")[:-1]
recs = [i for i, l in enumerate(lines) if l.startswith('{"hash"')]
exec(code)
open(dst, "w").write("\n".join(lines) + "\n")
PY
}
expect_bad() { # NAME SEQ WHAT
    ctl grace audit verify "$PHI_TMP/$1.jsonl" --key "$KEY"
    phi_assert_eq "$RC" 1 "$3: refused"
    phi_assert_contains "$ERR" "record $2:" "$3: names record $2"
}
seq_of() { sed -n "$(($1 + 1))p" "$PHI_TMP/all.jsonl" | jq -r .leaf.seq; }
mid=$(python3 -c 'import sys; l=open(sys.argv[1]).read().split("\n"); r=[i for i,x in enumerate(l) if x.startswith("{\"hash\"")]; print(r[len(r)//2])' "$PHI_TMP/all.jsonl")
tamper field "i = recs[len(recs)//2]; lines[i] = lines[i].replace('\"event\":\"', '\"event\":\"x', 1)"
expect_bad field "$(seq_of "$mid")" "one field of one record changed"
tamper delete "del lines[recs[len(recs)//2]]"
expect_bad delete "$(seq_of "$mid")" "a record in the middle deleted"
last=$(python3 -c 'import sys; l=open(sys.argv[1]).read().split("\n"); r=[i for i,x in enumerate(l) if x.startswith("{\"hash\"")]; print(r[-1])' "$PHI_TMP/all.jsonl")
tamper newest "del lines[recs[-1]]"
expect_bad newest "$(seq_of "$last")" "the newest record deleted"
tamper swap "i = recs[len(recs)//2]; j = recs[len(recs)//2 + 1]; lines[i], lines[j] = lines[j], lines[i]"
expect_bad swap "$(seq_of "$mid")" "two records swapped"
# Re-signed with another key (same name): no trusted signature.
python3 - "$PHI_TMP/all.jsonl" "$PHI_TMP/resigned.jsonl" <<'PY'
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
src, dst = sys.argv[1:]
sk = Ed25519PrivateKey.generate()
pk = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
out = []
for line in open(src).read().split("\n")[:-1]:
    if line.startswith('{"checkpoint"'):
        obj = json.loads(line)
        note = obj["checkpoint"]
        text = note[: note.index("\n\n") + 1]
        name = note[note.index("\n\n") + 2:].split(" ")[1]
        kid = hashlib.sha256(name.encode() + b"\n\x01" + pk).digest()[:4]
        sig = base64.b64encode(kid + sk.sign(text.encode())).decode()
        obj["checkpoint"] = text + "\n\u2014 " + name + " " + sig + "\n"
        line = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    out.append(line)
open(dst, "w").write("\n".join(out) + "\n")
PY
ctl grace audit verify "$PHI_TMP/resigned.jsonl" --key "$KEY"
phi_assert_eq "$RC" 1 "re-signed with another key: refused"
phi_assert_contains "$ERR" "record 0:" "re-signed: names the first record the forged checkpoint covers"
ctl grace audit verify "$PHI_TMP/all.jsonl" --key "$KEY"
phi_assert_eq "$RC" 0 "the untouched export still verifies"

# ------------------------------------- the store's copies are not trusted
# An edited indexed column, as someone with write access to the store would
# make it to hide a record from a query by user: the daemon filters on the
# record (the leaf) and reports the row.
db=$TOTP_DIR/phi.db
fail_seq=$(jq -r '.[0].seq' <<<"$(ctl grace audit --user alice --event auth_fail --format json && echo "$OUT")")
sqlite3 "$db" "UPDATE audit_log SET user_name = 'mallory' WHERE seq = $fail_seq"
ctl grace audit --user alice --event auth_fail --format json
phi_assert_eq "$RC" 1 "a query over an edited row fails"
phi_assert_eq "$(jq -r '.[0].seq' <<<"$OUT")" "$fail_seq" "the record is still found by what it says"
phi_assert_contains "$ERR" "seq $fail_seq: the stored user_name column says 'mallory', its record 'alice'" \
    "the row is reported"
ctl grace audit --user mallory --format json
phi_assert_eq "$(jq length <<<"$OUT")" 0 "the edited column shows no record"
phi_assert_contains "$ERR" "seq $fail_seq:" "and the row is reported there too"
sqlite3 "$db" "UPDATE audit_log SET user_name = 'alice', leaf = replace(leaf, 'wrong_code', 'right_code')
               WHERE seq = $fail_seq"
ctl grace audit --user alice --event auth_fail --format json
phi_assert_eq "$RC" 1 "an edited record fails the query"
phi_assert_contains "$ERR" "seq $fail_seq: the stored leaf hash is not the hash of its record" \
    "its leaf hash no longer matches"

phi_pass "audit queries: auditors only, by user/actor/role/event/host/time, three formats, request life, exports verified and tampering caught"

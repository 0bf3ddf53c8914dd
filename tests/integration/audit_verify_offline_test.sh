#!/usr/bin/env bash
# phictl audit verify FILE --key PUBKEY on an auditor's machine: no daemon, no
# store, only the export and the log's public key. Untouched exports (the whole
# log, and a range inside it) verify with exit 0 and their figures; each way of
# tampering exits 1 naming the first bad record: one field of one record
# changed, a record deleted in the middle, the newest records deleted, two
# records swapped, the whole export re-signed with another key of the same
# name; a wrong key is refused; usage errors exit 2. The exports come from
# tests/tools/phi-audit-mkexport (synthetic records, libphi_audit's writers).
# An auditor's own verifier written from phi-audit(5) alone
# (audit_verify_ref.py: hashlib and Python's Ed25519) gives the same verdict on
# every file, so the page is enough to write one.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
phi_harness_init "$@"

phictl=$PHI_BUILD_DIR/phiaccessd/phictl
mk=$PHI_BUILD_DIR/tests/tools/phi-audit-mkexport
if [ ! -x "$phictl" ] || [ ! -x "$mk" ]; then
    phi_die "build phictl and phi-audit-mkexport first"
fi
cd "$PHI_TMP"

# verify FILE KEY...: sets out (stdout and stderr) and rc
verify() {
    rc=0
    out=$("$phictl" audit verify "$@" 2>&1) || rc=$?
}

# line_of SEQ FILE: the line number of record SEQ
line_of() {
    awk -v pat="\"seq\":$1," 'index($0, pat) && !found { print NR; found = 1 }' "$2"
}

"$mk" keygen db1.example/audit log.key log.pub
"$mk" keygen db1.example/audit other.key other.pub
phi_assert_match "$(cat log.pub)" '^db1\.example/audit\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$' "the verifier key is NAME+KEYID+BASE64"
phi_assert_match "$(cat log.key)" '^PRIVATE\+KEY\+db1\.example/audit\+[0-9a-f]{8}\+' "the signer key is PRIVATE+KEY+NAME+KEYID+BASE64"

# 50 records, a checkpoint after every 10
"$mk" export log.key 50 0 50 10 >whole.jsonl
verify whole.jsonl --key log.pub
phi_assert_eq "$rc" 0 "an untouched export verifies"
phi_assert_contains "$out" "records:     50 (seq 0 to 49)" "it names the records verified"
phi_assert_contains "$out" "tree size:   50" "and the tree size"
phi_assert_contains "$out" "checkpoints: 5" "and the checkpoints"
phi_assert_contains "$out" "origin:      db1.example/audit" "and the checkpoint's origin"
verify whole.jsonl --key "$(cat log.pub)"
phi_assert_eq "$rc" 0 "the key may be given as its text"
rc=0
out=$("$phictl" --json audit verify whole.jsonl --key log.pub) || rc=$?
phi_assert_eq "$rc" 0 "--json: verified"
phi_assert_eq "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["verified"], d["records"], d["tree_size"], d["origin"])' <<<"$out")" \
    "True 50 50 db1.example/audit" "--json gives the same figures"
printf '# the log of db1\n%s\n%s\n' "$(cat other.pub)" "$(cat log.pub)" >keys.txt
verify whole.jsonl --key keys.txt
phi_assert_eq "$rc" 0 "a key file of several keys: one of them signed"

# a range inside the log: tied to the signed root by the left subtree hashes
# and a consistency proof
"$mk" export log.key 50 13 37 8 >range.jsonl
verify range.jsonl --key log.pub
phi_assert_eq "$rc" 0 "an export of records 13..36 of 50 verifies"
phi_assert_contains "$out" "records:     24 (seq 13 to 36)" "the range is named"
phi_assert_contains "$out" "tree size:   50" "within the tree of 50"

# one field of one record changed
n=$(line_of 23 whole.jsonl)
sed "${n}s/\"user\":\"user23\"/\"user\":\"user24\"/" whole.jsonl >t1.jsonl
phi_check_fails "the edit happened" cmp -s whole.jsonl t1.jsonl
verify t1.jsonl --key log.pub
phi_assert_eq "$rc" 1 "a changed field: exit 1"
phi_assert_contains "$out" "record 23: its contents do not match the hash beside it" "the changed record is named"

# a record deleted in the middle
sed "$(line_of 31 whole.jsonl)d" whole.jsonl >t2.jsonl
verify t2.jsonl --key log.pub
phi_assert_eq "$rc" 1 "a deleted record: exit 1"
phi_assert_contains "$out" "record 31: missing or out of order" "the deleted record is named"

# the newest records deleted (45..49, before the last checkpoint)
sed "$(line_of 45 whole.jsonl),$(line_of 49 whole.jsonl)d" whole.jsonl >t3.jsonl
verify t3.jsonl --key log.pub
phi_assert_eq "$rc" 1 "newest records deleted: exit 1"
phi_assert_contains "$out" "record 45: missing: the checkpoint covers 50 records" "the first deleted record is named"

# two records swapped
a=$(line_of 5 whole.jsonl) b=$(line_of 6 whole.jsonl)
awk -v a="$a" -v b="$b" 'NR == a { held = $0; next } { print } NR == b { print held }' whole.jsonl >t4.jsonl
verify t4.jsonl --key log.pub
phi_assert_eq "$rc" 1 "swapped records: exit 1"
phi_assert_contains "$out" "record 5: missing or out of order: line $a holds record 6" "the first swapped record is named"

# re-signed with another key of the same name
"$mk" export other.key 50 0 50 10 >t5.jsonl
verify t5.jsonl --key log.pub
phi_assert_eq "$rc" 1 "re-signed with another key: exit 1"
phi_assert_contains "$out" "record 0: the checkpoint on line 12 that covers it: no signature by a trusted key" \
    "the first record of the forged checkpoint is named"
verify whole.jsonl --key other.pub
phi_assert_eq "$rc" 1 "the wrong key refuses an untouched export"

# cut off in the middle of a line
head -c 2000 whole.jsonl >t6.jsonl
verify t6.jsonl --key log.pub
phi_assert_eq "$rc" 1 "an export cut off: exit 1"
phi_assert_contains "$out" "does not end in a newline" "and says so"

# usage
verify whole.jsonl
phi_assert_eq "$rc" 2 "no key: usage error"
phi_assert_contains "$out" "needs the log's public key" "which says what is missing"
verify whole.jsonl --key "db1.example/audit+00000000+AAAA"
phi_assert_eq "$rc" 2 "a malformed key: usage error"
verify missing.jsonl --key log.pub
phi_assert_eq "$rc" 2 "a missing file: usage error"
verify --key log.pub
phi_assert_eq "$rc" 2 "no file: usage error"

# the verifier written from phi-audit(5) agrees on every file
if python3 -c 'import cryptography' 2>/dev/null; then
    ref=$PHI_SOURCE_DIR/tests/integration/audit_verify_ref.py
    for f in whole:"ok 50 50 db1.example/audit" range:"ok 24 50 db1.example/audit" t1:"bad 23" t2:"bad 31" \
             t3:"bad 45" t4:"bad 5" t5:"bad 0" t6:"bad -"; do
        file=${f%%:*} want=${f#*:}
        got=$(python3 "$ref" "$file.jsonl" log.pub) || true
        phi_assert_eq "$got" "$want" "phi-audit(5)'s own verifier on $file.jsonl"
    done
else
    phi_log "python3-cryptography is missing: the check against a verifier written from phi-audit(5) is left out"
fi

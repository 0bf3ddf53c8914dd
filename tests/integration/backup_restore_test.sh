#!/usr/bin/env bash
# phictl backup and phiaccessd --restore against the real daemon, with codes
# computed by oathtool: backups taken while a login load commits (and the
# load is served meanwhile, never denied for a busy store), each a consistent
# phi store of its own; who may take one; then a code accepted after the
# backup, the daemon stopped, the backup restored: that code, and every code
# of a step up to the restore moment, is refused as a replay, while the next
# step's code is accepted. Restore refuses a file that is no store, a damaged
# one, a store of another program, and a running daemon, each saying why and
# leaving the store as it was.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

command -v sqlite3 >/dev/null || phi_die "sqlite3 is missing; run ./scripts/setup"
# The load's unknown names each leave a failure counter; none may lock anyone out.
TOTP_EXTRA_CONFIG=$'max_failures = 1000\nhost_max_failures = 1000000'
totp_setup
# heidi is an admin (admin_group phi-admins): admins may take backups.
printf 'root:x:0:\nphi-admins:x:3000:heidi\n' >"$TOTP_DIR/group"
totp_daemon_start
totp_stack phi-auth "auth required $PHI_BUILD_DIR/pam_phi/pam_phi.so"
totp_stack other "auth required pam_deny.so" "account required pam_deny.so" \
    "password required pam_deny.so" "session required pam_deny.so"
for u in alice bob carol dave erin; do
    totp_enroll "$u"
done
PHICTL=$PHI_BUILD_DIR/phiaccessd/phictl
DAEMON=$PHI_BUILD_DIR/phiaccessd/phiaccessd
db=$TOTP_DIR/phi.db
BK=$PHI_TMP/backups
mkdir -p "$BK"
chmod 0777 "$BK"

# pair FILE KEY: the value of KEY in phictl's (or --restore's) aligned output.
pair() {
    awk -v k="$2" '$1 == k { print $2 }' "$1"
}

# A store with some bulk, so that a copy takes long enough for logins to
# complete during it: 100,000 failure counters, as a password spray over
# unknown names would leave (inside their window: the verifier keeps them).
now=$(date +%s)
sqlite3 "$db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
    INSERT INTO auth_failures (kind, key, count, window_start, locked_until)
    SELECT 1, 'sprayed' || i, 1, $now, 0 FROM n"

# ------------------------------------------------------------ backup under load
# Two loops of logins: unknown names (each a failure counter written in the
# verifier's round) with a timestamp per answer, and whatever the answer was.
load() {
    local i=0 res
    while [ ! -e "$PHI_TMP/load.stop" ]; do
        i=$((i + 1))
        res=$(totp_pam phi-auth "nobody$1x$i" --answer 123456)
        printf '%s %s\n' "$(date +%s%N)" "$res" >>"$PHI_TMP/load.$1"
    done
}
load 1 &
load1=$!
load 2 &
load2=$!
phi_wait_for --timeout 20 --what "the login load" test -s "$PHI_TMP/load.2" || phi_die "no login load"

during=0
for n in 1 2 3; do
    start=$(date +%s%N)
    "$PHICTL" backup "$BK/b$n.db" >"$PHI_TMP/backup.$n.out" 2>&1 ||
        phi_fail "phictl backup $n under load" "$(cat "$PHI_TMP/backup.$n.out")"
    end=$(date +%s%N)
    sleep 0.3
    during=$((during + $(cat "$PHI_TMP"/load.[12] | awk -v s="$start" -v e="$end" '$1 > s && $1 < e' | wc -l)))
done
touch "$PHI_TMP/load.stop"
wait "$load1" "$load2"
phi_pass "three backups taken while the login load ran"
phi_assert_ne "$during" 0 "logins were answered while the copies were being taken ($during of them): the copy does not stop the verifier's commits"
total=$(cat "$PHI_TMP"/load.[12] | wc -l)
phi_assert_eq "$(cat "$PHI_TMP"/load.[12] | awk '$2 != "PAM_AUTH_ERR"' | wc -l)" 0 \
    "every one of the load's $total logins got its answer (wrong code), none 'cannot decide' for a busy store"

for n in 1 2 3; do
    b=$BK/b$n.db
    phi_assert_eq "$(sqlite3 "$b" "PRAGMA integrity_check")" ok "backup $n passes SQLite's integrity check"
    phi_assert_eq "$(sqlite3 "$b" "SELECT count(*) FROM totp_tokens WHERE state = 2")" 5 "backup $n holds the 5 active tokens"
    phi_log "backup $n: $(tr -s ' \n' ' ' <"$PHI_TMP/backup.$n.out" | cut -c1-200)"
    phi_assert_eq "$(pair "$PHI_TMP/backup.$n.out" tokens_active)" 5 "phictl backup $n reports 5 active tokens"
    phi_assert_eq "$(pair "$PHI_TMP/backup.$n.out" bytes)" "$(stat -c %s "$b")" "phictl backup $n reports the file's size"
    phi_assert_eq "$(pair "$PHI_TMP/backup.$n.out" schema_version)" \
        "$(sqlite3 "$b" "SELECT max(version) FROM schema_migrations")" "backup $n reports its schema version"
    phi_assert_eq "$(sqlite3 "$b" "PRAGMA journal_mode")" delete "backup $n stands alone (no write-ahead log needed)"
    phi_check "no -wal beside backup $n" test ! -e "$b-wal"
    phi_assert_eq "$(stat -c %a "$b")" 600 "backup $n is 0600"
done
counters=$(pair "$PHI_TMP/backup.3.out" failure_counters)
phi_assert_eq "$(sqlite3 "$BK/b3.db" "SELECT count(*) FROM auth_failures")" "$counters" \
    "backup 3's failure counters are as reported ($counters: the bulk and the load's so far)"
phi_check "no temporary copy is left in the state directory" \
    bash -c "! compgen -G '$db.backup-*' >/dev/null"

# Who may: an admin yes (the file is theirs), another user no (and phictl
# removes the file it made), and never over an existing file.
totp_phictl_as heidi backup "$BK/heidi.db" >"$PHI_TMP/heidi.out" 2>&1 ||
    phi_fail "an admin's backup" "$(cat "$PHI_TMP/heidi.out")"
phi_assert_eq "$(stat -c %u "$BK/heidi.db")" "${TOTP_UID[heidi]}" "an admin's backup file is the admin's own"
phi_assert_eq "$(sqlite3 "$BK/heidi.db" "PRAGMA integrity_check")" ok "an admin's backup is a sound store"
rc=0
totp_phictl_as bob backup "$BK/bob.db" >"$PHI_TMP/bob.out" 2>&1 || rc=$?
phi_assert_eq "$rc" 1 "a user who is no admin is refused (exit 1)"
phi_assert_contains "$(cat "$PHI_TMP/bob.out")" "permission denied: 'backup' is only for root or members of phi-admins" \
    "and told who may"
phi_check "and the file phictl made for it is gone" test ! -e "$BK/bob.db"
rc=0
"$PHICTL" backup "$BK/b1.db" >"$PHI_TMP/again.out" 2>&1 || rc=$?
phi_assert_eq "$rc" 1 "a backup over an existing file is refused"
phi_assert_contains "$(cat "$PHI_TMP/again.out")" "exists already" "saying the file exists"
phi_assert_eq "$(sqlite3 "$BK/b1.db" "PRAGMA integrity_check")" ok "and that file is untouched"

# A descriptor with another request is refused (the server takes one only
# with a backup): python's socket module passes one with a status request.
python3 - "$TOTP_SOCKET" >"$PHI_TMP/fdstatus.out" 2>&1 <<'PY' || phi_fail "descriptor with status" "$(cat "$PHI_TMP/fdstatus.out")"
import socket, struct, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
body = struct.pack(">BHH", 1, 0x0100, 0)
frame = struct.pack(">I", len(body)) + body
fd = os.open("/dev/null", os.O_WRONLY)
s.sendmsg([frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
hdr = s.recv(4)
n = struct.unpack(">I", hdr)[0]
data = b""
while len(data) < n:
    data += s.recv(n - len(data))
print("type=%#06x" % struct.unpack(">H", data[1:3])[0])
print(data)
PY
phi_assert_contains "$(cat "$PHI_TMP/fdstatus.out")" "type=0x0002" "a descriptor passed with a status request gets an ERROR"
phi_assert_contains "$(cat "$PHI_TMP/fdstatus.out")" "a descriptor may come only with a backup request" "saying why"
phi_check "the daemon still answers" "$PHICTL" status

# ------------------------------------------------- a code used after the backup
backup=$BK/b3.db
step=$(totp_fresh_step alice)
code=$(totp_code alice "$step")
phi_assert_eq "$(totp_pam phi-auth alice --answer "$code")" PAM_SUCCESS "alice logs in after the backup was taken"
TOTP_LAST[alice]=$step
phi_assert_eq "$(totp_pam phi-auth alice --answer "$code")" PAM_AUTH_ERR "her code is used up (a replay)"
[ "$(sqlite3 "$backup" "SELECT watermark FROM totp_tokens WHERE user = 'alice'")" -lt "$step" ] ||
    phi_die "the backup already has alice's new step: not a backup from before her login"
# frank gets an enrolment ticket, which the next backup holds.
"$PHICTL" totp issue frank --expires 1h >/dev/null
"$PHICTL" backup "$BK/with-ticket.db" >"$PHI_TMP/with-ticket.out"
phi_assert_eq "$(pair "$PHI_TMP/with-ticket.out" tickets)" 1 "a backup counts the open ticket"

# --json: numbers as JSON numbers.
"$PHICTL" --json backup "$BK/json.db" >"$PHI_TMP/json.out"
phi_assert_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["tokens_active"], d["integrity"], type(d["bytes"]).__name__)' "$PHI_TMP/json.out")" \
    "5 ok int" "phictl --json backup: one JSON object, counts as numbers"

# ---------------------------------------------------------- restore refusals
# Running daemon: refused by the instance lock, the store untouched.
ino=$(stat -c %i "$db")
rc=0
"$DAEMON" --restore "$backup" --config "$TOTP_CONF" >"$PHI_TMP/running.out" 2>&1 || rc=$?
phi_assert_eq "$rc" 1 "restore with the daemon running: exit 1"
phi_assert_contains "$(cat "$PHI_TMP/running.out")" \
    "another phiaccessd (pid $TOTP_DAEMON_PID) uses the store $db; restore refused: stop it first" "saying the daemon runs"
phi_assert_eq "$(stat -c %i "$db")" "$ino" "the store is the same file"
phi_check "nothing was put beside it" bash -c "! compgen -G '$db.re*' >/dev/null"

totp_daemon_stop
sum=$(sha256sum "$db" | cut -d' ' -f1)
# refuse FILE TEXT WHAT: --restore FILE exits 1 saying TEXT; the store unchanged.
refuse() {
    local out=$PHI_TMP/refuse.out rc=0
    "$DAEMON" --restore "$1" --config "$TOTP_CONF" >"$out" 2>&1 || rc=$?
    phi_assert_eq "$rc" 1 "restore of $3: exit 1"
    phi_assert_contains "$(cat "$out")" "$2" "restore of $3 says why"
    phi_assert_contains "$(cat "$out")" "the store $db was not changed" "and that the store was not changed"
    phi_assert_eq "$(sha256sum "$db" | cut -d' ' -f1)" "$sum" "the store is unchanged after refusing $3"
    phi_check "nothing was left beside the store after $3" bash -c "! compgen -G '$db.re*' >/dev/null"
}
refuse "$TOTP_CONF" "not an SQLite database (no SQLite header), so not a phi store" "a text file"
refuse "$PHI_TMP/missing.db" "cannot open it: No such file or directory" "a missing file"
sqlite3 "$PHI_TMP/other.db" "CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('x')"
refuse "$PHI_TMP/other.db" "an SQLite database, but not a phi store" "another program's SQLite database"
# Damaged: page 1 past the file header overwritten (its b-tree header and
# the schema it holds or points to), and a copy cut short.
cp "$backup" "$PHI_TMP/damaged.db"
dd if=/dev/urandom of="$PHI_TMP/damaged.db" bs=1 seek=100 count=3996 conv=notrunc status=none
refuse "$PHI_TMP/damaged.db" "malformed" "a damaged copy"
head -c $(( $(stat -c %s "$backup") - 1000 )) "$backup" >"$PHI_TMP/short.db"
refuse "$PHI_TMP/short.db" "cut short" "a copy cut short"
# A store of a newer phiaccessd.
cp "$backup" "$PHI_TMP/newer.db"
sqlite3 "$PHI_TMP/newer.db" "INSERT INTO schema_migrations VALUES (999, 'future', 0)"
refuse "$PHI_TMP/newer.db" "schema version 999 is newer than this phiaccessd knows" "a newer store"

# ------------------------------------------------------------------- restore
cur=$(phi_journal_cursor)
ident_sum=$(sha256sum "$TOTP_DIR/phi-identities.db" | cut -d' ' -f1)
"$DAEMON" --restore "$BK/with-ticket.db" --config "$TOTP_CONF" >"$PHI_TMP/restore.out" 2>&1 ||
    phi_fail "phiaccessd --restore" "$(cat "$PHI_TMP/restore.out")"
phi_pass "phiaccessd --restore with the daemon stopped"
floor=$(pair "$PHI_TMP/restore.out" replay_floor_step)
restore_step=$(( floor - 1 ))   # window = 1 (the default)
phi_assert_eq "$(pair "$PHI_TMP/restore.out" tokens_active)" 5 "the restored store has the 5 tokens"
phi_assert_eq "$(pair "$PHI_TMP/restore.out" tickets_removed)" 1 "the backup's ticket was removed"
phi_assert_eq "$(sqlite3 "$db" "SELECT count(*) FROM totp_tickets")" 0 "no ticket in the restored store"
phi_assert_eq "$(sqlite3 "$db" "SELECT count(*) FROM totp_tokens WHERE watermark < $floor")" 0 \
    "every watermark is at the floor or above"
phi_assert_eq "$(sqlite3 "$db" "PRAGMA integrity_check")" ok "the restored store is sound"
replaced=$(pair "$PHI_TMP/restore.out" replaced)
phi_check "the replaced store is kept beside it" test -s "$replaced"
phi_assert_eq "$(sqlite3 "$replaced" "SELECT watermark FROM totp_tokens WHERE user = 'alice'")" "$step" \
    "the kept store still has alice's login after the backup"
phi_assert_eq "$(sha256sum "$TOTP_DIR/phi-identities.db" | cut -d' ' -f1)" "$ident_sum" "the identities file is untouched"
phi_check "no temporary copy is left" bash -c "! compgen -G '$db.restore-*' >/dev/null"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" PHI_EVENT=store_restored)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_ACTOR)" root "store_restored is journaled with the actor"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_FILE)" "$BK/with-ticket.db" "and the file"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_FLOOR_STEP)" "$floor" "and the floor"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field MESSAGE_ID)" \
    "$(sed -n 's/.*"store_restored", "\([0-9a-f]*\)".*/\1/p' "$PHI_SOURCE_DIR/phiaccessd/events.h")" "with its MESSAGE_ID"

# What a crash in the middle of a backup would leave (a copy of every
# sealed seed) is removed when the daemon starts.
cp "$BK/b1.db" "$db.backup-in-progress-Xy12ab"
cp "$BK/b1.db" "$db.backup-monday"
totp_daemon_start
phi_check "a leftover backup copy beside the store is removed at start" test ! -e "$db.backup-in-progress-Xy12ab"
phi_check "a file an admin named is not" test -e "$db.backup-monday"
rm "$db.backup-monday"
cur=$(phi_journal_cursor)
phi_assert_eq "$(totp_pam phi-auth alice --answer "$code")" PAM_AUTH_ERR \
    "after the restore, the code alice used after the backup is refused"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_USER=alice PHI_EVENT=totp_replay)
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_USER)" alice "as a replay (totp_replay)"
# Codes of the restore moment's step and of the floor (the window's end
# then): valid codes of the window, refused as replays, not as wrong codes.
for s in "$restore_step" "$floor"; do
    [ "$s" -ge "$(( $(totp_now_step) - 1 ))" ] || continue
    cur=$(phi_journal_cursor)
    phi_assert_eq "$(totp_pam phi-auth bob --answer "$(totp_code bob "$s")")" PAM_AUTH_ERR \
        "bob's code of step $s (up to the floor $floor) is refused"
    phi_check "as a replay" phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd \
        PHI_USER=bob PHI_EVENT=totp_replay
done
# The next step's code: accepted once the clock is in the step after the
# restore's (the window then reaches above the floor); at most 30 s away,
# spent on the checks above.
phi_wait_for --timeout 35 --interval 0.5 --what "the step after the restore" \
    bash -c "[ $(( floor + 1 )) -le \$(( \$(date +%s) / 30 + 1 )) ]" || phi_die "the clock did not move on"
phi_assert_eq "$(totp_pam phi-auth alice --answer "$(totp_code alice $((floor + 1)))")" PAM_SUCCESS \
    "a code of the step after the floor is accepted"
phi_assert_eq "$(totp_pam phi-auth carol --answer "$(totp_code carol $((floor + 1)))")" PAM_SUCCESS \
    "for every user"

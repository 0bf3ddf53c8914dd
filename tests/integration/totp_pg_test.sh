#!/usr/bin/env bash
# phiaccessd with its shared store in PostgreSQL (a private PostgreSQL 15 on a
# socket in the test's temp dir): the schema made by phiaccessd --init-store as
# its owner, the daemon running as a role with only the rights phiaccessd(8)
# lists; an enrolled token logs in, its code is refused a second time, also
# after a restart; phictl status names the backend and the server; with
# PostgreSQL stopped a login is denied as PAM_AUTHINFO_UNAVAIL (never
# accepted) with the reason journaled, and once it is back the same code logs
# in without a restart of the daemon. --check-config refuses a TCP host without
# certificate checks, and synchronous_commit = off.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
# shellcheck source-path=SCRIPTDIR source=../lib/postgres.bash
source "$(dirname "$0")/../lib/postgres.bash"
phi_harness_init "$@"

PHIACCESSD=$PHI_BUILD_DIR/phiaccessd/phiaccessd
PHICTL=$PHI_BUILD_DIR/phiaccessd/phictl
phi_pg_start
totp_setup
# [store] on PostgreSQL: the identities stay in the file beside path.
with_store() { # URI [MORE LINES]: the test's configuration with this [store]
    local uri=$1
    shift
    sed -e "/^\[store\]/a backend = postgresql\nuri = $uri${1:+\n$1}" "$TOTP_CONF.sqlite"
}
cp "$TOTP_CONF" "$TOTP_CONF.sqlite"
with_store "$PHI_PG_URI" "synchronous_commit = on" >"$TOTP_CONF"

# ---------------------------------------------------------------- config checks
bad=$PHI_TMP/bad.conf
with_store "host=db.example.org dbname=phi user=phid sslmode=disable" >"$bad"
chmod 0600 "$bad"
out=$("$PHIACCESSD" --config "$bad" --check-config 2>&1) && phi_fail "--check-config accepted sslmode=disable" "$out"
line=$(grep -n '^uri = host=' "$bad" | cut -d: -f1)
phi_assert_match "$out" "^$bad:$line: uri: .*sslmode=disable: add sslmode=verify-full" \
    "--check-config refuses sslmode=disable to a TCP host, at FILE:LINE, naming the fix"
with_store "postgresql://phid:sekrit-pw@db.example.org/phi" >"$bad"
out=$("$PHIACCESSD" --config "$bad" --check-config 2>&1) && phi_fail "--check-config accepted no sslmode" "$out"
phi_assert_contains "$out" "sslmode=prefer (the default)" "a URI without sslmode is refused too"
phi_assert_not_contains "$out" "sekrit-pw" "the refusal does not show the password"
with_store "host=db1.example.org,db2.example.org dbname=phi sslmode=verify-full target_session_attrs=read-write" >"$bad"
phi_check "two TCP hosts with sslmode=verify-full pass --check-config" "$PHIACCESSD" --config "$bad" --check-config
with_store "$PHI_PG_URI" "synchronous_commit = off" >"$bad"
out=$("$PHIACCESSD" --config "$bad" --check-config 2>&1) && phi_fail "--check-config accepted synchronous_commit = off" "$out"
phi_assert_contains "$out" "off is refused" "synchronous_commit = off is refused"
phi_check "the test's configuration passes --check-config" "$PHIACCESSD" --config "$TOTP_CONF" --check-config

# ---------------------------------------------------------------- schema
out=$(timeout 30 "$PHIACCESSD" --config "$TOTP_CONF" 2>&1) && phi_fail "the daemon started without a schema" "$out"
phi_assert_contains "$out" "--init-store run as the owner role" \
    "on an empty database the daemon's role is refused, and told to run --init-store as the owner"
phi_assert_not_contains "$out" "user=phid" "the log does not quote the connection string"
owner=$PHI_TMP/owner.conf
with_store "$PHI_PG_URI_OWNER" >"$owner"
chmod 0600 "$owner"
out=$("$PHIACCESSD" --config "$owner" --init-store 2>&1) || phi_fail "--init-store" "$out"
phi_assert_eq "$out" "store (PostgreSQL at $PHI_PG_SOCK:5432 db phi) (postgresql): schema version 10" \
    "--init-store creates the schema on an empty database"
phi_assert_eq "$("$PHIACCESSD" --config "$owner" --init-store 2>&1)" "$out" "--init-store again changes nothing"
phi_assert_eq "$(phi_pg_psql -tAc "SELECT tableowner FROM pg_tables WHERE tablename = 'totp_tokens'")" phi_owner \
    "the tables belong to the owner role, not the daemon's"

# ---------------------------------------------------------------- logins
totp_daemon_start
totp_stack phi-auth "auth required $PHI_BUILD_DIR/pam_phi/pam_phi.so"
totp_stack other "auth required pam_deny.so" "account required pam_deny.so" \
    "password required pam_deny.so" "session required pam_deny.so"
totp_enroll alice
phi_assert_eq "$(phi_pg_psql -tAc "SELECT count(*) FROM totp_tokens WHERE state = 2")" 1 \
    "the enrolled token is in PostgreSQL"
phi_check_fails "and not in an SQLite store" test -e "$TOTP_DIR/phi.db"

status=$("$PHICTL" status)
phi_assert_match "$status" "store_backend +postgresql" "phictl status names the backend"
phi_assert_match "$status" "store +$PHI_PG_SOCK:5432 db phi" "phictl status names the server and the database"
phi_assert_match "$status" "store_reachable +yes" "phictl status says it is reachable"

cur=$(phi_journal_cursor)
step=$(totp_fresh_step alice)
code=$(totp_code alice "$step")
# Debian's pamtester, the service file where libpam looks for it (this test's
# mount namespace), the code on its standard input; the sanitizer build's
# pam_phi.so needs its runtimes preloaded into the uninstrumented program.
san_env=()
san_libs=$(ldd "$PHI_BUILD_DIR/pam_phi/pam_phi.so" | awk '/libasan|libubsan/ { printf "%s%s", sep, $3; sep = " " }')
[ -z "$san_libs" ] || san_env=(env "LD_PRELOAD=$san_libs" "ASAN_OPTIONS=detect_leaks=0")
rc=0
out=$(printf '%s\n' "$code" | phi_ns_run --bind "$TOTP_DIR/pam.d/phi-auth:/etc/pam.d/phi-auth" -- \
    timeout 20 "${san_env[@]}" pamtester -v phi-auth alice authenticate 2>&1) || rc=$?
phi_assert_eq "$rc" 0 "pamtester: a right code logs in"
phi_assert_contains "$out" "successfully authenticated" "pamtester says so"
TOTP_LAST[alice]=$step
phi_assert_eq "$(phi_pg_psql -tAc "SELECT watermark FROM totp_tokens WHERE state = 2")" "$step" \
    "its step is the watermark in PostgreSQL"
phi_assert_eq "$(totp_pam phi-auth alice --answer "$code")" PAM_AUTH_ERR "the same code again is refused"
phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=totp_replay PHI_USER=alice >/dev/null
phi_pass "the second use is journaled as totp_replay"
phi_assert_eq "$(phi_pg_psql -tAc "SELECT count(*) FROM audit_log WHERE event = 'auth_ok'")" 1 \
    "the login's audit record is in PostgreSQL"

totp_daemon_stop
totp_daemon_start
phi_assert_eq "$(totp_pam phi-auth alice --answer "$code")" PAM_AUTH_ERR \
    "after a restart of the daemon the used code is still refused"

# ---------------------------------------------------------------- outage
# The cursor first: any of the daemon's rounds (a timer's too) may be the
# first to find the database gone.
cur=$(phi_journal_cursor)
phi_pg_stop
step=$(totp_fresh_step alice)
code=$(totp_code alice "$step")
phi_assert_eq "$(totp_pam phi-auth alice --answer "$code")" PAM_AUTHINFO_UNAVAIL \
    "with PostgreSQL stopped a right code is not accepted: PAM_AUTHINFO_UNAVAIL"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PRIORITY=3 \
    MESSAGE="TOTP round of 1 requests failed and was rolled back: Connection reset by peer")
phi_pass "the failed round is journaled with its reason"
ev=$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd | phi_json_field MESSAGE)
phi_assert_contains "$ev" "the PostgreSQL store at $PHI_PG_SOCK:5432 db phi is unreachable" \
    "the daemon journals that the database is unreachable, naming it"
phi_assert_eq "$(totp_pam phi-auth alice --answer "$code")" PAM_AUTHINFO_UNAVAIL \
    "a second try while it is down is denied the same way"
phi_assert_match "$("$PHICTL" status)" "store_reachable +no" "phictl status says the store is unreachable"
phi_check_fails "nothing was accepted meanwhile" phi_journal_wait --timeout 1 --after "$cur" \
    SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok

cur=$(phi_journal_cursor)
phi_pg_restart
phi_assert_eq "$(totp_pam phi-auth alice --answer "$code")" PAM_SUCCESS \
    "PostgreSQL back: the same code logs in, the daemon not restarted (the failed rounds used nothing up)"
TOTP_LAST[alice]=$step
ev=$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd | phi_json_field MESSAGE)
phi_assert_contains "$ev" "is reachable again" "the recovery is journaled"
phi_assert_eq "$(totp_pam phi-auth alice --answer "$code")" PAM_AUTH_ERR "and once only"
phi_assert_match "$("$PHICTL" status)" "store_reachable +yes" "phictl status says it is reachable again"

# A restart of the database with no login meanwhile: the daemon's
# connection is dead and it learns so at the next login, which still passes.
phi_pg_stop
phi_pg_restart
step=$(totp_fresh_step alice)
phi_assert_eq "$(totp_pam phi-auth alice --answer "$(totp_code alice "$step")")" PAM_SUCCESS \
    "the first login after a restart of PostgreSQL passes (the connection is reset at once)"
TOTP_LAST[alice]=$step

# phictl backup: the database's own tools.
out=$("$PHICTL" backup "$PHI_TMP/backup.db" 2>&1) && phi_fail "phictl backup of a PostgreSQL store" "$out"
phi_assert_contains "$out" "pg_dump" "phictl backup points at the database's own tools"

# A database restored by its own tools: --restore is for SQLite files, the
# replay floor is set on the database as it is, with the daemon running.
out=$("$PHIACCESSD" --config "$TOTP_CONF" --restore "$PHI_TMP/backup.db" 2>&1) && phi_fail "--restore on PostgreSQL" "$out"
phi_assert_contains "$out" "phiaccessd --replay-floor" "--restore on PostgreSQL points at --replay-floor"
before=$(phi_pg_psql -tAc "SELECT watermark FROM totp_tokens WHERE state = 2")
out=$("$PHIACCESSD" --config "$TOTP_CONF" --replay-floor 2>&1) || phi_fail "--replay-floor" "$out"
floor=$(printf '%s\n' "$out" | sed -n 's/^replay_floor_step *\([0-9]*\) .*/\1/p')
phi_assert_match "$floor" '^[0-9]+$' "--replay-floor prints its floor"
phi_assert_eq "$(phi_pg_psql -tAc "SELECT watermark FROM totp_tokens WHERE state = 2")" "$floor" \
    "every watermark in PostgreSQL is raised to it"
raised=0
[ "$before" -ge "$floor" ] || raised=1
phi_assert_contains "$out" "tokens_raised        $raised" "--replay-floor counts the tokens it raised"
phi_assert_eq "$(totp_pam phi-auth alice --answer "$(totp_code alice "$(totp_now_step)")")" PAM_AUTH_ERR \
    "the running daemon refuses the current code at once"

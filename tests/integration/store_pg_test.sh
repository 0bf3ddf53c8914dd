#!/usr/bin/env bash
# The store's shared part on PostgreSQL: the conformance sequence that
# store_sqlite_test.sh runs on SQLite (store_conformance.c), on a private
# PostgreSQL 15 through a role with only the rights phiaccessd(8) lists; two
# handles racing on one watermark (exactly one wins); the schema made by its
# owner only, migrated once by two daemons starting at once, and refused when
# newer than the code; rows edited behind the store's back refused.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=../lib/postgres.bash
source "$(dirname "$0")/../lib/postgres.bash"
phi_harness_init "$@"

conf=$PHI_BUILD_DIR/tests/integration/store_conformance
ids=$PHI_TMP/phi-identities.db
phi_pg_start

# The daemon's role may not create tables: an empty database is refused, and
# nothing is left half made.
phi_assert_eq "$("$conf" postgresql "$PHI_PG_URI" "$ids" open || true)" "error EACCES" \
    "the daemon's role cannot create the schema"
phi_assert_eq "$(phi_pg_psql -tAc "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" 0 \
    "the refused attempt left no table behind"

# Two owners' opens at once on an empty database: each migration once.
phi_pg_psql -d postgres -qc "CREATE DATABASE phi2 OWNER phi_owner"
uri2="host=$PHI_PG_SOCK dbname=phi2 user=phi_owner"
"$conf" postgresql "$uri2" "$PHI_TMP/ids-a.db" open >"$PHI_TMP/open-a" 2>&1 &
pa=$!
"$conf" postgresql "$uri2" "$PHI_TMP/ids-b.db" open >"$PHI_TMP/open-b" 2>&1 &
pb=$!
wait "$pa" || true
wait "$pb" || true
phi_assert_eq "$(cat "$PHI_TMP/open-a")" "ok 10" "the first of two concurrent opens migrated to schema 10"
phi_assert_eq "$(cat "$PHI_TMP/open-b")" "ok 10" "the second of two concurrent opens migrated to schema 10"
phi_assert_eq "$(phi_pg_psql -d phi2 -tAc "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations")" \
    "1,2,3,4,5,6,7,8,9,10" "each migration was recorded once"

# The owner makes the schema; the daemon's role then uses it.
phi_assert_eq "$("$conf" postgresql "$PHI_PG_URI_OWNER" "$ids" open)" "ok 10" "the owner creates the schema"
out=$("$conf" postgresql "$PHI_PG_URI" "$ids" all 2>&1) || phi_fail "the conformance sequence on PostgreSQL" "$out"
phi_log "$out"
phi_assert_match "$out" "postgresql store conformance: [0-9]+ checks passed, 0 failed" \
    "every check passed on PostgreSQL, through the daemon's role"
n_pg=$(printf '%s\n' "$out" | sed -n 's/.*conformance: \([0-9]*\) checks passed.*/\1/p')
out_sqlite=$("$conf" sqlite "$PHI_TMP/ref.db" - all 2>&1) || phi_fail "the conformance sequence on SQLite" "$out_sqlite"
n_sqlite=$(printf '%s\n' "$out_sqlite" | sed -n 's/.*conformance: \([0-9]*\) checks passed.*/\1/p')
phi_assert_eq "$n_pg" "$n_sqlite" "both backends passed the same number of checks"
phi_assert_eq "$("$conf" postgresql "$PHI_PG_URI" "$ids" token-get racer)" "ok 2000" \
    "the race's winner left its watermark, read by a new connection"
phi_assert_eq "$(phi_pg_psql -tAc "SELECT watermark FROM totp_tokens WHERE \"user\" = 'racer'")" 2000 \
    "the database holds the same watermark"

# Rows edited behind the store's back: refused, not handed on.
phi_pg_psql -qc "UPDATE totp_tokens SET sealed = '\\x00' WHERE \"user\" = 'racer'"
phi_assert_eq "$("$conf" postgresql "$PHI_PG_URI" "$ids" token-get racer || true)" "error EBADMSG" \
    "a sealed seed too short to be one is refused (EBADMSG)"
phi_assert_eq "$("$conf" postgresql "$PHI_PG_URI" "$ids" token-get z)" "ok 100" "another token still reads"
phi_pg_psql -qc "ALTER TABLE totp_tokens ALTER COLUMN watermark TYPE text"
phi_assert_eq "$("$conf" postgresql "$PHI_PG_URI" "$ids" token-get z || true)" "error EBADMSG" \
    "a column of the wrong type is refused (EBADMSG)"

# A connection that ends up on TCP without a checked certificate is refused
# even when the string passed the check: PGHOST and PGSSLMODE (or a service
# file) can send libpq elsewhere.
# The server also on TCP (the test's loopback), with TLS: a CA, and a
# certificate for localhost signed by it; and an unrelated CA.
pki=$PHI_TMP/pki
mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=phi-test-ca -keyout "$pki/ca.key" \
    -out "$pki/ca.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout "$pki/other.key" \
    -out "$pki/other.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$pki/server.key" -out "$pki/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' >"$pki/ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile "$pki/ext" -out "$pki/server.pem" 2>/dev/null
chown nobody "$pki/server.key" "$pki/server.pem"
chmod 0600 "$pki/server.key"
chmod 0755 "$pki"
phi_pg_stop
PHI_PG_LISTEN=127.0.0.1 PHI_PG_OPTS="-c ssl=on -c ssl_cert_file=$pki/server.pem -c ssl_key_file=$pki/server.key" \
    phi_pg_restart
tls="host=localhost hostaddr=127.0.0.1 dbname=phi user=phid sslmode=verify-full"
phi_assert_eq "$("$conf" postgresql "$tls sslrootcert=$pki/ca.pem" "$ids" open)" "ok 10" \
    "over TCP with sslmode=verify-full and the server's CA: connected"
phi_assert_eq "$("$conf" postgresql "$tls sslrootcert=$pki/other.pem" "$ids" open 2>/dev/null || true)" \
    "error ECONNRESET" "with another CA the certificate check fails and nothing is used"
phi_assert_eq "$(PGHOST=127.0.0.1 PGSSLMODE=disable "$conf" postgresql "dbname=phi user=phid" "$ids" open || true)" \
    "error EPROTO" "a connection redirected to TCP without TLS is refused"
phi_assert_eq "$(PGHOST=localhost PGSSLMODE=require "$conf" postgresql "dbname=phi user=phid" "$ids" open || true)" \
    "error EPROTO" "a connection redirected to TLS that checks no certificate is refused"
phi_assert_eq "$("$conf" postgresql "host=$PHI_PG_SOCK dbname=phi user=phid" "$ids" open)" "ok 10" \
    "the same server through its socket is used"

# A schema newer than this code: refused, whoever asks.
phi_pg_psql -qc "INSERT INTO schema_migrations (version, name, applied) VALUES (99, 'from the future', 0)"
phi_assert_eq "$("$conf" postgresql "$PHI_PG_URI_OWNER" "$ids" open || true)" "error EPROTONOSUPPORT" \
    "a database newer than the code is refused"

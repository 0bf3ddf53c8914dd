#!/usr/bin/env bash
# A store from before identities (schema 3: identities in the store's own
# tables, seeds sealed for the name alone) upgrades in place at the first
# start: its users and groups move to the identity file, every token and
# ticket is bound to the identity its name has then (a local account's
# "local:UID", a directory entry's key) and each seed is re-sealed for name
# and identity -- its users' codes still work. A token whose name has no user
# then is kept but refused (its person left before the upgrade). The store is
# made by hand with sqlite3, its seeds sealed by tests/tools/phi-legacy-seal
# exactly as the schema-3 daemon sealed them.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

totp_setup
db=$TOTP_DIR/phi.db
key=$TOTP_DIR/master.key
head -c 32 /dev/urandom >"$key"
chmod 0600 "$key"
declare -A SEED=()
for u in alice dirk ghost; do
    SEED[$u]=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
done
# seal USER: "X'nonce', X'sealed'" for an INSERT.
seal() {
    local nonce sealed
    read -r nonce sealed < <("$PHI_BUILD_DIR/tests/tools/phi-legacy-seal" "$key" "$1" "${SEED[$1]}")
    echo "X'$nonce', X'$sealed'"
}
now=$(date +%s)
sqlite3 "$db" >/dev/null <<SQL
PRAGMA journal_mode=WAL;
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL);
CREATE TABLE users (key TEXT PRIMARY KEY, dn TEXT NOT NULL, name TEXT NOT NULL UNIQUE,
  uid INTEGER NOT NULL UNIQUE, gid INTEGER NOT NULL, gecos TEXT NOT NULL,
  home TEXT NOT NULL, shell TEXT NOT NULL, modified INTEGER NOT NULL);
CREATE INDEX users_dn ON users(dn);
CREATE TABLE groups (key TEXT PRIMARY KEY, dn TEXT NOT NULL, name TEXT NOT NULL UNIQUE,
  gid INTEGER NOT NULL UNIQUE, modified INTEGER NOT NULL);
CREATE INDEX groups_dn ON groups(dn);
CREATE TABLE group_members (group_key TEXT NOT NULL REFERENCES groups(key) ON DELETE CASCADE,
  kind INTEGER NOT NULL CHECK (kind IN (1, 2)), value TEXT NOT NULL,
  PRIMARY KEY (group_key, kind, value)) WITHOUT ROWID;
CREATE TABLE memberships (user_name TEXT NOT NULL, group_name TEXT NOT NULL,
  PRIMARY KEY (user_name, group_name)) WITHOUT ROWID;
CREATE TABLE sync_state (id INTEGER PRIMARY KEY CHECK (id = 1), cookie BLOB,
  last_success INTEGER NOT NULL DEFAULT 0, last_full INTEGER NOT NULL DEFAULT 0,
  generation INTEGER NOT NULL DEFAULT 0);
INSERT INTO sync_state (id) VALUES (1);
CREATE TABLE totp_tokens (user TEXT NOT NULL, state INTEGER NOT NULL CHECK (state IN (1, 2)),
  algorithm TEXT NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
  digits INTEGER NOT NULL CHECK (digits IN (6, 8)),
  nonce BLOB NOT NULL CHECK (length(nonce) = 24), sealed BLOB NOT NULL,
  watermark INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,
  enrolled INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (user, state)) WITHOUT ROWID;
CREATE TABLE totp_tickets (user TEXT PRIMARY KEY, expires INTEGER NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE auth_failures (kind INTEGER NOT NULL CHECK (kind IN (1, 2)), key TEXT NOT NULL,
  count INTEGER NOT NULL, window_start INTEGER NOT NULL, locked_until INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (kind, key)) WITHOUT ROWID;
ALTER TABLE sync_state ADD COLUMN search TEXT NOT NULL DEFAULT '';
INSERT INTO schema_migrations VALUES (1, 'identities', $now), (2, 'totp', $now), (3, 'sync-search', $now);
INSERT INTO users VALUES ('uuid-dirk', 'uid=dirk,ou=people,dc=example,dc=org', 'dirk', 10001, 10001,
  'Dirk', '/home/dirk', '/bin/sh', $now);
INSERT INTO totp_tokens VALUES ('alice', 2, 'SHA1', 6, $(seal alice), 0, $now, $now);
INSERT INTO totp_tokens VALUES ('dirk', 2, 'SHA1', 6, $(seal dirk), 0, $now, $now);
INSERT INTO totp_tokens VALUES ('ghost', 2, 'SHA1', 6, $(seal ghost), 0, $now, $now);
INSERT INTO totp_tickets VALUES ('carol', $((now + 3600)), $now);
SQL
chmod 0600 "$db"

cur=$(phi_journal_cursor)
totp_daemon_start
totp_stack phi-auth "auth required $PHI_BUILD_DIR/pam_phi/pam_phi.so"
totp_stack other "auth required pam_deny.so" "account required pam_deny.so" \
    "password required pam_deny.so" "session required pam_deny.so"
code_of() { oathtool --totp "${SEED[$1]}"; }

phi_assert_eq "$(totp_pam phi-auth alice --answer "$(code_of alice)")" PAM_SUCCESS \
    "alice (a local account) logs in with her code from before the upgrade"
phi_assert_eq "$(totp_pam phi-auth dirk --answer "$(code_of dirk)")" PAM_SUCCESS \
    "dirk (a directory user, from the moved identities) logs in with his"
phi_assert_eq "$(totp_pam phi-auth ghost --answer "$(code_of ghost)")" PAM_AUTH_ERR \
    "ghost, whose name had no user at the upgrade, is refused"
phi_assert_eq "$(sqlite3 "$db" "SELECT user || '=' || identity FROM totp_tokens ORDER BY user" | tr '\n' ' ')" \
    "alice=local:2001 dirk=uuid-dirk ghost= " "tokens are bound to the identities their names had"
phi_assert_eq "$(sqlite3 "$db" "SELECT identity FROM totp_tickets WHERE user = 'carol'")" local:2003 \
    "carol's ticket too"
phi_assert_eq "$(sqlite3 "$db" "SELECT COUNT(*) FROM sqlite_master WHERE name = 'users'")" 0 \
    "the store no longer holds identities"
phi_assert_eq "$(sqlite3 "$TOTP_DIR/phi-identities.db" "SELECT key FROM users")" uuid-dirk \
    "they are in the identity file"
phi_check "the upgrade is journaled" phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd \
    MESSAGE="upgraded store: 2 TOTP tokens bound to their user's identity and re-sealed, 1 kept unusable (no such user)"
phi_check "carol enrols under her ticket from before the upgrade" totp_phictl_enroll_expect carol 0

# Once: ghost stays bound to none even though a restart finds its name free
# (a person given the name later is not its owner), and the codes still work.
totp_daemon_stop
totp_daemon_start
phi_assert_eq "$(sqlite3 "$db" "SELECT COUNT(*) FROM totp_tokens WHERE identity IS NULL")" 0 \
    "nothing is left to bind"
sleep 31
phi_assert_eq "$(totp_pam phi-auth alice --answer "$(code_of alice)")" PAM_SUCCESS "after a restart too"
phi_assert_eq "$(totp_pam phi-auth ghost --answer "$(code_of ghost)")" PAM_AUTH_ERR "and ghost is still refused"
phi_pass "a schema-3 store upgrades and its users' codes still work"

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SQLite backend of the store's shared part (TOTP tokens, tickets, failure
 * counters): WAL mode, synchronous=FULL because a watermark, an audit or a
 * grant record must be durable before its answer goes out, foreign keys on.
 * The directory's identities are in a file of their own
 * (store_sqlite_identities.c); a store made before that is moved there once,
 * at open. */

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "store_sqlite_db.h"

#define MIGRATION_IDENTITIES_MOVED 4u

/* Append-only: a migration once shipped is never edited. Later issues add their
 * tables (requests, grants, audit) as new rows. Migrations 1 and 3 made the
 * identity tables that 4 drops: a new store runs them all, an old one keeps
 * its rows until they are safe in the identity file. */
static const struct phi_sqlite_migration migrations[] = {
        { 1, "identities",
          "CREATE TABLE users ("
          "  key TEXT PRIMARY KEY, dn TEXT NOT NULL, name TEXT NOT NULL UNIQUE,"
          "  uid INTEGER NOT NULL UNIQUE, gid INTEGER NOT NULL, gecos TEXT NOT NULL,"
          "  home TEXT NOT NULL, shell TEXT NOT NULL, modified INTEGER NOT NULL);"
          "CREATE INDEX users_dn ON users(dn);"
          "CREATE TABLE groups ("
          "  key TEXT PRIMARY KEY, dn TEXT NOT NULL, name TEXT NOT NULL UNIQUE,"
          "  gid INTEGER NOT NULL UNIQUE, modified INTEGER NOT NULL);"
          "CREATE INDEX groups_dn ON groups(dn);"
          /* kind 1 = memberUid (a user name), 2 = member (a DN) */
          "CREATE TABLE group_members ("
          "  group_key TEXT NOT NULL REFERENCES groups(key) ON DELETE CASCADE,"
          "  kind INTEGER NOT NULL CHECK (kind IN (1, 2)), value TEXT NOT NULL,"
          "  PRIMARY KEY (group_key, kind, value)) WITHOUT ROWID;"
          /* nesting resolved: rebuilt after each change set */
          "CREATE TABLE memberships ("
          "  user_name TEXT NOT NULL, group_name TEXT NOT NULL,"
          "  PRIMARY KEY (user_name, group_name)) WITHOUT ROWID;"
          "CREATE TABLE sync_state ("
          "  id INTEGER PRIMARY KEY CHECK (id = 1), cookie BLOB,"
          "  last_success INTEGER NOT NULL DEFAULT 0, last_full INTEGER NOT NULL DEFAULT 0,"
          "  generation INTEGER NOT NULL DEFAULT 0);"
          "INSERT INTO sync_state (id) VALUES (1);" },
        { 2, "totp",
          /* Seeds only sealed (seal.h); nonce and tag make a row self-contained. */
          "CREATE TABLE totp_tokens ("
          "  user TEXT NOT NULL, state INTEGER NOT NULL CHECK (state IN (1, 2)),"
          "  algorithm TEXT NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),"
          "  digits INTEGER NOT NULL CHECK (digits IN (6, 8)),"
          "  nonce BLOB NOT NULL CHECK (length(nonce) = 24), sealed BLOB NOT NULL,"
          "  watermark INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
          "  enrolled INTEGER NOT NULL DEFAULT 0,"
          "  PRIMARY KEY (user, state)) WITHOUT ROWID;"
          "CREATE TABLE totp_tickets ("
          "  user TEXT PRIMARY KEY, expires INTEGER NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID;"
          /* kind 1 = user name, 2 = remote host */
          "CREATE TABLE auth_failures ("
          "  kind INTEGER NOT NULL CHECK (kind IN (1, 2)), key TEXT NOT NULL,"
          "  count INTEGER NOT NULL, window_start INTEGER NOT NULL,"
          "  locked_until INTEGER NOT NULL DEFAULT 0,"
          "  PRIMARY KEY (kind, key)) WITHOUT ROWID;" },
        /* The search a cookie belongs to: another base or filter invalidates it. */
        { 3, "sync-search", "ALTER TABLE sync_state ADD COLUMN search TEXT NOT NULL DEFAULT '';" },
        /* The identities moved to a file of their own (store_sqlite_identities.c);
         * dropped here only once copied there (move_identities below). */
        { MIGRATION_IDENTITIES_MOVED, "identities-moved",
          "DROP TABLE memberships; DROP TABLE group_members; DROP TABLE groups; DROP TABLE users;"
          "DROP TABLE sync_state;" },
        /* Whose a token or ticket is (token.h): NULL for those made before,
         * bound by the verifier at its start (it has the master key to
         * re-seal them); '' for one whose name had no identity then. */
        { 5, "token-identity",
          "ALTER TABLE totp_tokens ADD COLUMN identity TEXT;"
          "ALTER TABLE totp_tickets ADD COLUMN identity TEXT;"
          "CREATE INDEX totp_tokens_identity ON totp_tokens(identity);"
          "CREATE INDEX totp_tickets_identity ON totp_tickets(identity);" },
        /* Open sessions (sessions.h): a row from pam_open_session() to its
         * close. The host column is for a store that several hosts share. */
        { 6, "sessions",
          "CREATE TABLE sessions ("
          "  id TEXT PRIMARY KEY, user_name TEXT NOT NULL, service TEXT NOT NULL,"
          "  rhost TEXT NOT NULL, tty TEXT NOT NULL, host TEXT NOT NULL,"
          "  pid BIGINT NOT NULL, pid_start BIGINT NOT NULL, boot_id TEXT NOT NULL,"
          "  opened BIGINT NOT NULL);"
          "CREATE INDEX sessions_host ON sessions(host, id);" },
};

enum {
        S_TOKEN_GET,
        S_TOKEN_PUT,
        S_TOKEN_ADVANCE,
        S_TOKEN_ACTIVATE_DROP,
        S_TOKEN_ACTIVATE,
        S_TOKEN_DELETE,
        S_TICKET_PUT,
        S_TICKET_GET,
        S_TICKET_DELETE,
        S_REVOKE_TOKENS,
        S_REVOKE_TICKETS,
        S_LEGACY_USERS,
        S_FAILURES_GET,
        S_FAILURES_PUT,
        S_FAILURES_DELETE,
        S_FAILURES_PRUNE,
        S_SESSION_PUT,
        S_SESSION_GET,
        S_SESSION_DELETE,
        S_SESSION_LIST,
        S_SESSION_LIST_HOST,
        S_BEGIN,
        S_COMMIT,
        S_ROLLBACK,
        _S_MAX,
};

static const char *const statements[_S_MAX] = {
        [S_TOKEN_GET] = "SELECT algorithm, digits, nonce, sealed, watermark, created, enrolled, identity"
                        " FROM totp_tokens WHERE user = ?1 AND state = ?2",
        [S_TOKEN_PUT] = "INSERT OR REPLACE INTO totp_tokens (user, state, algorithm, digits, nonce,"
                        " sealed, watermark, created, enrolled, identity)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        /* The WHERE is the replay rule's last line: of two racing acceptances of
         * one step, only one changes a row. */
        [S_TOKEN_ADVANCE] = "UPDATE totp_tokens SET watermark = ?3"
                            " WHERE user = ?1 AND state = ?2 AND watermark < ?3",
        [S_TOKEN_ACTIVATE_DROP] = "DELETE FROM totp_tokens WHERE user = ?1 AND state = 2",
        [S_TOKEN_ACTIVATE] = "UPDATE totp_tokens SET state = 2, enrolled = ?2 WHERE user = ?1 AND state = 1",
        [S_TOKEN_DELETE] = "DELETE FROM totp_tokens WHERE user = ?1",
        [S_TICKET_PUT] = "INSERT OR REPLACE INTO totp_tickets (user, expires, created, identity)"
                         " VALUES (?1, ?2, ?3, ?4)",
        [S_TICKET_GET] = "SELECT expires, created, identity FROM totp_tickets WHERE user = ?1",
        [S_REVOKE_TOKENS] = "DELETE FROM totp_tokens WHERE identity = ?1",
        [S_REVOKE_TICKETS] = "DELETE FROM totp_tickets WHERE identity = ?1",
        [S_LEGACY_USERS] = "SELECT user FROM totp_tokens WHERE identity IS NULL"
                           " UNION SELECT user FROM totp_tickets WHERE identity IS NULL ORDER BY 1",
        [S_TICKET_DELETE] = "DELETE FROM totp_tickets WHERE user = ?1",
        [S_FAILURES_GET] = "SELECT count, window_start, locked_until FROM auth_failures"
                           " WHERE kind = ?1 AND key = ?2",
        [S_FAILURES_PUT] = "INSERT OR REPLACE INTO auth_failures (kind, key, count, window_start,"
                           " locked_until) VALUES (?1, ?2, ?3, ?4, ?5)",
        [S_FAILURES_DELETE] = "DELETE FROM auth_failures WHERE kind = ?1 AND key = ?2",
        [S_FAILURES_PRUNE] = "DELETE FROM auth_failures WHERE locked_until <= ?1 AND window_start + ?2 <= ?1",
#define SESSION_COLUMNS "id, user_name, service, rhost, tty, host, pid, pid_start, boot_id, opened"
        [S_SESSION_PUT] = "INSERT INTO sessions (" SESSION_COLUMNS ")"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        [S_SESSION_GET] = "SELECT " SESSION_COLUMNS " FROM sessions WHERE id = ?1",
        [S_SESSION_DELETE] = "DELETE FROM sessions WHERE id = ?1",
        [S_SESSION_LIST] = "SELECT " SESSION_COLUMNS " FROM sessions WHERE id > ?1 ORDER BY id LIMIT ?2",
        [S_SESSION_LIST_HOST] = "SELECT " SESSION_COLUMNS " FROM sessions WHERE host = ?3 AND id > ?1"
                                " ORDER BY id LIMIT ?2",
        /* Prepared once like the rest: every TOTP round runs them, and
         * sqlite3_exec() would parse them each time. */
        [S_BEGIN] = "BEGIN IMMEDIATE",
        [S_COMMIT] = "COMMIT",
        [S_ROLLBACK] = "ROLLBACK",
};

/*
 * Moves the identities of a store at schema 3 (they lived in its own tables)
 * into the identity file, crash-safe without a transaction spanning the two
 * files (SQLite in WAL mode does not make one atomic across files):
 *   1. in the identity file, one transaction copies every row from the store
 *      (attached read-only) and records moved_from_store; a crash before its
 *      commit leaves the identity file as it was and the store untouched, and
 *      the next start copies again;
 *   2. only then does migration 4 drop the old tables from the store, in the
 *      store's own transaction; a crash before that leaves both copies, and
 *      the next start sees moved_from_store, copies nothing, and drops.
 * At no point is the only copy of a row gone.
 */
static int move_identities(const char *location, const char *identities_location) {
        static const char *const copy =
                "DELETE FROM main.memberships; DELETE FROM main.group_members; DELETE FROM main.groups;"
                "DELETE FROM main.users;"
                "INSERT INTO main.users SELECT key, dn, name, uid, gid, gecos, home, shell, modified FROM old.users;"
                "INSERT INTO main.groups SELECT key, dn, name, gid, modified FROM old.groups;"
                "INSERT INTO main.group_members SELECT group_key, kind, value FROM old.group_members;"
                "INSERT INTO main.memberships SELECT user_name, group_name FROM old.memberships;"
                "UPDATE main.sync_state SET (cookie, last_success, last_full, generation, search) ="
                " (SELECT cookie, last_success, last_full, generation, search FROM old.sync_state WHERE id = 1)"
                " WHERE id = 1 AND EXISTS (SELECT 1 FROM old.sync_state WHERE id = 1);"
                "INSERT INTO main.moved_from_store (id, moved) VALUES (1, strftime('%s', 'now'));";
        struct phi_sqlite_db d = { 0 };
        sqlite3_stmt *st = NULL;
        uint64_t moved = 0;
        int rc, r;

        if ((r = phi_sqlite_open(identities_location, false, NULL, 0, &d)) < 0 ||
            (r = phi_sqlite_identities_migrate(&d)) < 0)
                goto out;
        /* Only read: the copy writes main (the identity file) alone. */
        rc = sqlite3_prepare_v2(d.db, "ATTACH DATABASE ?1 AS old", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(st, 1, location, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_DONE)
                rc = SQLITE_OK;
        sqlite3_finalize(st);
        st = NULL;
        if ((r = phi_sqlite_error(rc)) < 0 || (r = phi_sqlite_exec(&d, "BEGIN IMMEDIATE")) < 0)
                goto out;
        rc = sqlite3_prepare_v2(d.db, "SELECT COUNT(*) FROM main.moved_from_store", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                moved = (uint64_t) sqlite3_column_int64(st, 0);
                rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        if ((r = phi_sqlite_error(rc)) < 0 || (moved == 0 && (r = phi_sqlite_exec(&d, copy)) < 0) ||
            (r = phi_sqlite_exec(&d, "COMMIT")) < 0) {
                (void) phi_sqlite_exec(&d, "ROLLBACK");
                goto out;
        }
        r = phi_sqlite_exec(&d, "DETACH DATABASE old");
out:
        phi_sqlite_close(&d);
        return r;
}

static void sqlite_close(void *b) {
        struct phi_sqlite_db *s = b;

        if (!s)
                return;
        phi_sqlite_close(s);
        free(s);
}

static int sqlite_open(const char *location, const char *identities_location, void **ret) {
        struct phi_sqlite_db *s = calloc(1, sizeof(*s));
        bool in_memory = !*location || strcmp(location, ":memory:") == 0;
        unsigned have = 0;
        int r;

        if (!s)
                return -ENOMEM;
        if ((r = phi_sqlite_open(location, false, statements, _S_MAX, s)) < 0)
                goto fail;
        if ((r = phi_sqlite_migrate(s, migrations, PHI_ELEMENTSOF(migrations), MIGRATION_IDENTITIES_MOVED - 1)) < 0 ||
            (r = phi_sqlite_version(s, &have)) < 0)
                goto fail;
        if (have < MIGRATION_IDENTITIES_MOVED && !in_memory) {
                if ((r = move_identities(location, identities_location)) < 0)
                        goto fail;
        } else if (!in_memory) {
                /* Made here, so that a read-only handle finds it. */
                struct phi_sqlite_db d = { 0 };
                if ((r = phi_sqlite_open(identities_location, false, NULL, 0, &d)) >= 0)
                        r = phi_sqlite_identities_migrate(&d);
                phi_sqlite_close(&d);
                if (r < 0)
                        goto fail;
        }
        if ((r = phi_sqlite_migrate(s, migrations, PHI_ELEMENTSOF(migrations), UINT32_MAX)) < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        sqlite_close(s);
        return r;
}

static int run_stmt(struct phi_sqlite_db *s, int which) {
        sqlite3_stmt *st = phi_sqlite_stmt(s, (size_t) which);

        return st ? phi_sqlite_step_done(st) : -ENOMEM;
}

static int sqlite_begin(void *b) { return run_stmt(b, S_BEGIN); }
static int sqlite_commit(void *b) { return run_stmt(b, S_COMMIT); }
static void sqlite_rollback(void *b) { (void) run_stmt(b, S_ROLLBACK); }
static int sqlite_schema_version(void *b, unsigned *ret) { return phi_sqlite_version(b, ret); }

/* ------------------------------------------------------------------ TOTP */

/* NULL: legacy (made before identities). Longer than an identity can be: a
 * row edited behind our back, refused. */
static int identity_col(sqlite3_stmt *st, int i, char out[static PHI_IDENTITY_MAX + 1], bool *ret_legacy) {
        const unsigned char *t = sqlite3_column_text(st, i);
        int n = sqlite3_column_bytes(st, i);

        *ret_legacy = !t;
        out[0] = 0;
        if (!t)
                return 0;
        if (n < 0 || (size_t) n > PHI_IDENTITY_MAX || memchr(t, 0, (size_t) n))
                return -EUCLEAN;
        memcpy(out, t, (size_t) n);
        out[n] = 0;
        return 0;
}

static int sqlite_token_get(void *b, const char *user, enum phi_token_state state, struct phi_token *ret) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_TOKEN_GET);
        struct phi_token t = { .state = state };
        const void *nonce, *sealed;
        int rc, r = 0, n_nonce, n_sealed;

        if (!st)
                return -ENOMEM;
        if (phi_sqlite_bind_text(st, 1, user) < 0 || sqlite3_bind_int(st, 2, (int) state) != SQLITE_OK)
                return -ENOMEM;
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                r = rc == SQLITE_DONE ? -ENOENT : phi_sqlite_error(rc);
                goto out;
        }
        nonce = sqlite3_column_blob(st, 2);
        n_nonce = sqlite3_column_bytes(st, 2);
        sealed = sqlite3_column_blob(st, 3);
        n_sealed = sqlite3_column_bytes(st, 3);
        /* The table's CHECKs hold for rows we wrote; a row edited behind our back
         * is refused here rather than handed to the cipher with a wrong length. */
        if (phi_totp_algorithm_from_name((const char *) sqlite3_column_text(st, 0) ?: "", &t.algorithm) < 0 ||
            !nonce || n_nonce != PHI_SEAL_NONCE_BYTES || !sealed || n_sealed <= (int) PHI_SEAL_TAG_BYTES ||
            n_sealed > (int) sizeof(t.sealed)) {
                r = -EUCLEAN;
                goto out;
        }
        t.digits = (unsigned) sqlite3_column_int(st, 1);
        memcpy(t.nonce, nonce, PHI_SEAL_NONCE_BYTES);
        memcpy(t.sealed, sealed, (size_t) n_sealed);
        t.sealed_len = (size_t) n_sealed;
        t.watermark = (uint64_t) sqlite3_column_int64(st, 4);
        t.created = (uint64_t) sqlite3_column_int64(st, 5);
        t.enrolled = (uint64_t) sqlite3_column_int64(st, 6);
        if ((r = identity_col(st, 7, t.identity, &t.legacy)) < 0)
                goto out;
        *ret = t;
out:
        (void) sqlite3_reset(st);
        return r;
}

static int sqlite_token_put(void *b, const char *user, const struct phi_token *t) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_TOKEN_PUT);

        if (!st)
                return -ENOMEM;
        if (phi_sqlite_bind_text(st, 1, user) < 0 || sqlite3_bind_int(st, 2, (int) t->state) != SQLITE_OK ||
            phi_sqlite_bind_text(st, 3, phi_totp_algorithm_name(t->algorithm)) < 0 ||
            sqlite3_bind_int(st, 4, (int) t->digits) != SQLITE_OK ||
            sqlite3_bind_blob(st, 5, t->nonce, PHI_SEAL_NONCE_BYTES, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_blob(st, 6, t->sealed, (int) t->sealed_len, SQLITE_STATIC) != SQLITE_OK ||
            phi_sqlite_bind_i64(st, 7, t->watermark) < 0 || phi_sqlite_bind_i64(st, 8, t->created) < 0 ||
            phi_sqlite_bind_i64(st, 9, t->enrolled) < 0 || phi_sqlite_bind_text(st, 10, t->identity) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int sqlite_token_advance(void *b, const char *user, enum phi_token_state state, uint64_t step) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_TOKEN_ADVANCE);
        int r;

        if (!st)
                return -ENOMEM;
        if (phi_sqlite_bind_text(st, 1, user) < 0 || sqlite3_bind_int(st, 2, (int) state) != SQLITE_OK ||
            phi_sqlite_bind_i64(st, 3, step) < 0)
                return -ENOMEM;
        r = phi_sqlite_step_done(st);
        if (r == 0 && sqlite3_changes(s->db) != 1)
                r = -ESTALE;
        return r;
}

static int sqlite_token_activate(void *b, const char *user, uint64_t now) {
        struct phi_sqlite_db *s = b;
        struct phi_token pending;
        sqlite3_stmt *st;
        int r;

        if ((r = sqlite_token_get(b, user, PHI_TOKEN_PENDING, &pending)) < 0)
                return r;
        st = phi_sqlite_stmt(s, S_TOKEN_ACTIVATE_DROP);
        if (!st || phi_sqlite_bind_text(st, 1, user) < 0)
                return -ENOMEM;
        if ((r = phi_sqlite_step_done(st)) < 0)
                return r;
        st = phi_sqlite_stmt(s, S_TOKEN_ACTIVATE);
        if (!st || phi_sqlite_bind_text(st, 1, user) < 0 || phi_sqlite_bind_i64(st, 2, now) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int exec_user(struct phi_sqlite_db *s, int which, const char *user) {
        sqlite3_stmt *st = phi_sqlite_stmt(s, which);

        if (!st || phi_sqlite_bind_text(st, 1, user) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int sqlite_token_delete(void *b, const char *user, bool *ret_found) {
        struct phi_sqlite_db *s = b;
        int r, n;

        if ((r = exec_user(s, S_TOKEN_DELETE, user)) < 0)
                return r;
        n = sqlite3_changes(s->db);
        if ((r = exec_user(s, S_TICKET_DELETE, user)) < 0)
                return r;
        if (ret_found)
                *ret_found = n > 0;
        return 0;
}

static int sqlite_ticket_put(void *b, const char *user, const struct phi_ticket *t) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_TICKET_PUT);

        if (!st || phi_sqlite_bind_text(st, 1, user) < 0 || phi_sqlite_bind_i64(st, 2, t->expires) < 0 ||
            phi_sqlite_bind_i64(st, 3, t->created) < 0 || phi_sqlite_bind_text(st, 4, t->identity) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int sqlite_ticket_get(void *b, const char *user, struct phi_ticket *ret) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_TICKET_GET);
        struct phi_ticket t = { 0 };
        int rc, r = 0;

        if (!st || phi_sqlite_bind_text(st, 1, user) < 0)
                return -ENOMEM;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                t.expires = (uint64_t) sqlite3_column_int64(st, 0);
                t.created = (uint64_t) sqlite3_column_int64(st, 1);
                r = identity_col(st, 2, t.identity, &t.legacy);
        } else
                r = rc == SQLITE_DONE ? -ENOENT : phi_sqlite_error(rc);
        (void) sqlite3_reset(st);
        if (r == 0)
                *ret = t;
        return r;
}

static int sqlite_identity_revoke(void *b, const char *identity, bool *ret_token, bool *ret_ticket) {
        struct phi_sqlite_db *s = b;
        int r;

        if ((r = exec_user(s, S_REVOKE_TOKENS, identity)) < 0)
                return r;
        *ret_token = sqlite3_changes(s->db) > 0;
        if ((r = exec_user(s, S_REVOKE_TICKETS, identity)) < 0)
                return r;
        *ret_ticket = sqlite3_changes(s->db) > 0;
        return 0;
}

static int sqlite_legacy_users(void *b, char ***ret, size_t *ret_n) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_LEGACY_USERS);
        char **v = NULL;
        size_t n = 0;
        int r;

        if (!st)
                return -ENOMEM;
        r = phi_sqlite_collect_strv(st, &v, &n);
        (void) sqlite3_reset(st);
        if (r < 0) {
                phi_strv_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int sqlite_ticket_delete(void *b, const char *user) {
        return exec_user(b, S_TICKET_DELETE, user);
}

static int sqlite_failures_get(void *b, enum phi_failure_kind kind, const char *key, struct phi_failures *ret) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_FAILURES_GET);
        struct phi_failures f = { 0 };
        int rc, r = 0;

        if (!st || sqlite3_bind_int(st, 1, (int) kind) != SQLITE_OK || phi_sqlite_bind_text(st, 2, key) < 0)
                return -ENOMEM;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                f.count = (uint64_t) sqlite3_column_int64(st, 0);
                f.window_start = (uint64_t) sqlite3_column_int64(st, 1);
                f.locked_until = (uint64_t) sqlite3_column_int64(st, 2);
        } else if (rc != SQLITE_DONE)
                r = phi_sqlite_error(rc);
        (void) sqlite3_reset(st);
        if (r == 0)
                *ret = f;
        return r;
}

static int sqlite_failures_put(void *b, enum phi_failure_kind kind, const char *key, const struct phi_failures *f) {
        struct phi_sqlite_db *s = b;
        bool empty = f->count == 0 && f->locked_until == 0;
        sqlite3_stmt *st = phi_sqlite_stmt(s, empty ? S_FAILURES_DELETE : S_FAILURES_PUT);

        if (!st || sqlite3_bind_int(st, 1, (int) kind) != SQLITE_OK || phi_sqlite_bind_text(st, 2, key) < 0)
                return -ENOMEM;
        if (!empty && (phi_sqlite_bind_i64(st, 3, f->count) < 0 || phi_sqlite_bind_i64(st, 4, f->window_start) < 0 ||
                       phi_sqlite_bind_i64(st, 5, f->locked_until) < 0))
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int sqlite_failures_prune(void *b, uint64_t now, uint64_t window) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_FAILURES_PRUNE);

        if (!st || phi_sqlite_bind_i64(st, 1, now) < 0 || phi_sqlite_bind_i64(st, 2, window) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int sqlite_session_open(void *b, const struct phi_session *x) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_SESSION_PUT);
        int r;

        if (!st || phi_sqlite_bind_text(st, 1, x->id) < 0 || phi_sqlite_bind_text(st, 2, x->user) < 0 ||
            phi_sqlite_bind_text(st, 3, x->service) < 0 || phi_sqlite_bind_text(st, 4, x->rhost) < 0 ||
            phi_sqlite_bind_text(st, 5, x->tty) < 0 || phi_sqlite_bind_text(st, 6, x->host) < 0 ||
            phi_sqlite_bind_i64(st, 7, x->pid) < 0 || phi_sqlite_bind_i64(st, 8, x->pid_start) < 0 ||
            phi_sqlite_bind_text(st, 9, x->boot_id) < 0 || phi_sqlite_bind_i64(st, 10, x->opened) < 0)
                return -ENOMEM;
        r = phi_sqlite_step_done(st);
        return r;
}

static void session_col(sqlite3_stmt *st, int i, char *dst, size_t size) {
        const unsigned char *v = sqlite3_column_text(st, i);

        snprintf(dst, size, "%s", v ? (const char *) v : "");
}

static void session_row(sqlite3_stmt *st, struct phi_session *x) {
        *x = (struct phi_session){ 0 };
        session_col(st, 0, x->id, sizeof(x->id));
        session_col(st, 1, x->user, sizeof(x->user));
        session_col(st, 2, x->service, sizeof(x->service));
        session_col(st, 3, x->rhost, sizeof(x->rhost));
        session_col(st, 4, x->tty, sizeof(x->tty));
        session_col(st, 5, x->host, sizeof(x->host));
        x->pid = (uint64_t) sqlite3_column_int64(st, 6);
        x->pid_start = (uint64_t) sqlite3_column_int64(st, 7);
        session_col(st, 8, x->boot_id, sizeof(x->boot_id));
        x->opened = (uint64_t) sqlite3_column_int64(st, 9);
}

static int sqlite_session_close(void *b, const char *id, const char *user, struct phi_session *ret_old) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_SESSION_GET);
        struct phi_session old;
        int rc, r;

        if (!st || phi_sqlite_bind_text(st, 1, id) < 0)
                return -ENOMEM;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                session_row(st, &old);
                r = 0;
        } else
                r = rc == SQLITE_DONE ? -ENOENT : phi_sqlite_error(rc);
        (void) sqlite3_reset(st);
        if (r == 0 && user && strcmp(old.user, user) != 0)
                r = -EPERM;
        if (r < 0 || (r = exec_user(s, S_SESSION_DELETE, id)) < 0)
                return r;
        if (ret_old)
                *ret_old = old;
        return 0;
}

static int sqlite_session_list(void *b, const char *host, const char *after, size_t max, struct phi_session **ret,
                               size_t *ret_n) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, host ? S_SESSION_LIST_HOST : S_SESSION_LIST);
        struct phi_session *v = NULL;
        size_t n = 0;
        int rc, r = 0;

        if (!st || phi_sqlite_bind_text(st, 1, after) < 0 || phi_sqlite_bind_i64(st, 2, max) < 0 ||
            (host && phi_sqlite_bind_text(st, 3, host) < 0))
                return -ENOMEM;
        if (max > 0 && !(v = calloc(max, sizeof(*v))))
                r = -ENOMEM;
        while (r == 0 && n < max && (rc = sqlite3_step(st)) != SQLITE_DONE) {
                if (rc != SQLITE_ROW) {
                        r = phi_sqlite_error(rc);
                        break;
                }
                session_row(st, &v[n++]);
        }
        (void) sqlite3_reset(st);
        if (r < 0) {
                free(v);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

const struct phi_store_ops phi_store_sqlite_ops = {
        .name = "sqlite",
        .open = sqlite_open,
        .close = sqlite_close,
        .begin = sqlite_begin,
        .commit = sqlite_commit,
        .rollback = sqlite_rollback,
        .schema_version = sqlite_schema_version,
        .token_get = sqlite_token_get,
        .token_put = sqlite_token_put,
        .token_advance = sqlite_token_advance,
        .token_activate = sqlite_token_activate,
        .token_delete = sqlite_token_delete,
        .ticket_put = sqlite_ticket_put,
        .ticket_get = sqlite_ticket_get,
        .ticket_delete = sqlite_ticket_delete,
        .identity_revoke = sqlite_identity_revoke,
        .legacy_users = sqlite_legacy_users,
        .failures_get = sqlite_failures_get,
        .failures_put = sqlite_failures_put,
        .failures_prune = sqlite_failures_prune,
        .session_open = sqlite_session_open,
        .session_close = sqlite_session_close,
        .session_list = sqlite_session_list,
};

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SQLite backend of the store's shared part (TOTP tokens, tickets, failure
 * counters): WAL mode, synchronous=FULL because a watermark, an audit or a
 * grant record must be durable before its answer goes out, foreign keys on.
 * The directory's identities are in a file of their own
 * (store_sqlite_identities.c); a store made before that is moved there once,
 * at open. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "store_schema.h"
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
        /* 5 onwards: texts PostgreSQL runs too, described in store_schema.h. */
        { 5, "token-identity", PHI_STORE_MIGRATION_5 },
        { 6, "sessions", PHI_STORE_MIGRATION_6 },
        { 7, "elevation", PHI_STORE_MIGRATION_7 },
        { 8, "audit", PHI_STORE_MIGRATION_8 },
        { 9, "session-grant", PHI_STORE_MIGRATION_9 },
        { 10, "changes", PHI_STORE_MIGRATION_10 },
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
        S_ELEV_PUT,
        S_ELEV_UPDATE,
        S_ELEV_GET,
        S_ELEV_DECISION_ADD,
        S_ELEV_LIST,
        S_AUDIT_APPEND,
        S_AUDIT_TREE_GET,
        S_AUDIT_TREE_PUT,
        S_AUDIT_LEAF_HASH,
        S_AUDIT_ROWS,
        S_AUDIT_CHECKPOINT_PUT,
        S_AUDIT_CHECKPOINTS,
        S_TOKENS_RAISE_FLOOR,
        S_TICKETS_CLEAR,
        S_AUDIT_CHECKPOINT_LAST,
        S_ELEV_TRANSITION,
        S_CHANGE_ADD,
        S_CHANGES_AFTER,
        S_CHANGES_MAX,
        S_CHANGES_PRUNE,
        S_COUNTS,
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
#define SESSION_COLUMNS "id, user_name, service, rhost, tty, host, pid, pid_start, boot_id, opened, request_id"
        [S_SESSION_PUT] = "INSERT INTO sessions (" SESSION_COLUMNS ")"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        [S_SESSION_GET] = "SELECT " SESSION_COLUMNS " FROM sessions WHERE id = ?1",
        [S_SESSION_DELETE] = "DELETE FROM sessions WHERE id = ?1",
        [S_SESSION_LIST] = "SELECT " SESSION_COLUMNS " FROM sessions WHERE id > ?1 ORDER BY id LIMIT ?2",
        [S_SESSION_LIST_HOST] = "SELECT " SESSION_COLUMNS " FROM sessions WHERE host = ?3 AND id > ?1"
                                " ORDER BY id LIMIT ?2",
#define ELEV_COLUMNS                                                                                     \
        "id, requester, role, grant_group, host, reason, ticket, state, breakglass, duration, start_at, created," \
        " pending_until, approvals_needed, approvals, denials, starts, expires, ended, ended_by, end_reason,"  \
        " reviewer, review_note, reviewed"
        [S_ELEV_PUT] = "INSERT INTO elevation_requests (" ELEV_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                       " ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
        [S_ELEV_UPDATE] = "UPDATE elevation_requests SET state = ?8, approvals = ?15, denials = ?16,"
                          " starts = ?17, expires = ?18, ended = ?19, ended_by = ?20, end_reason = ?21,"
                          " reviewer = ?22, review_note = ?23, reviewed = ?24 WHERE id = ?1",
        [S_ELEV_GET] = "SELECT " ELEV_COLUMNS " FROM elevation_requests WHERE id = ?1",
        [S_ELEV_DECISION_ADD] = "INSERT INTO elevation_decisions (request_id, approver, approve, reason, decided)"
                                " VALUES (?1, ?2, ?3, ?4, ?5)",
        /* A bit per state in ?1; portable arithmetic rather than a list. */
        [S_ELEV_LIST] = "SELECT " ELEV_COLUMNS " FROM elevation_requests WHERE ((?1 / (1 << state)) % 2) = 1"
                        " AND (?2 = '' OR requester = ?2) AND id > ?3 ORDER BY id LIMIT ?4",
        [S_AUDIT_APPEND] = "INSERT INTO audit_log (seq, time_us, event, user_name, actor, role, request_id, host,"
                           " leaf, leaf_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        [S_AUDIT_TREE_GET] = "SELECT state FROM audit_tree WHERE id = 1",
        /* Portable upsert of the single row. */
        [S_AUDIT_TREE_PUT] = "INSERT INTO audit_tree (id, state) VALUES (1, ?1)"
                             " ON CONFLICT (id) DO UPDATE SET state = excluded.state",
        [S_AUDIT_LEAF_HASH] = "SELECT leaf_hash FROM audit_log WHERE seq = ?1",
        /* Each filter is off when its parameter is '' (or 0 for the times). */
        [S_AUDIT_ROWS] = "SELECT seq, time_us, event, user_name, actor, role, request_id, host, leaf, leaf_hash"
                         " FROM audit_log WHERE seq >= ?1 AND (?2 = '' OR event = ?2) AND (?3 = '' OR user_name = ?3)"
                         " AND (?4 = '' OR actor = ?4) AND (?5 = '' OR role = ?5) AND (?6 = '' OR request_id = ?6)"
                         " AND (?7 = '' OR host = ?7) AND (?8 = 0 OR time_us >= ?8) AND (?9 = 0 OR time_us < ?9)"
                         " ORDER BY seq LIMIT ?10",
        [S_AUDIT_CHECKPOINT_PUT] = "INSERT INTO audit_checkpoints (size, note, created) VALUES (?1, ?2, ?3)",
        [S_AUDIT_CHECKPOINTS] = "SELECT size, created, note FROM audit_checkpoints WHERE size >= ?1 ORDER BY size"
                                " LIMIT ?2",
        /* A restore's replay floor (backup.c): a plain comparison, no
         * two-argument max(), which PostgreSQL spells GREATEST. */
        [S_TOKENS_RAISE_FLOOR] = "UPDATE totp_tokens SET watermark = ?1 WHERE watermark < ?1",
        [S_TICKETS_CLEAR] = "DELETE FROM totp_tickets",
        [S_AUDIT_CHECKPOINT_LAST] = "SELECT size, created FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
        /* The update of S_ELEV_UPDATE, only if the row is still as read:
         * ?25..?28 are the old state, approvals, denials and review time. */
        [S_ELEV_TRANSITION] = "UPDATE elevation_requests SET state = ?8, approvals = ?15, denials = ?16,"
                              " starts = ?17, expires = ?18, ended = ?19, ended_by = ?20, end_reason = ?21,"
                              " reviewer = ?22, review_note = ?23, reviewed = ?24 WHERE id = ?1 AND state = ?25"
                              " AND approvals = ?26 AND denials = ?27 AND reviewed = ?28",
        /* max + 1 under the round's lock: no gaps, committed in seq order. */
        [S_CHANGE_ADD] = "INSERT INTO changes (seq, kind, subject, host, created)"
                         " SELECT COALESCE(MAX(seq), 0) + 1, ?1, ?2, ?3, ?4 FROM changes",
        [S_CHANGES_AFTER] = "SELECT seq, kind, subject, host, created FROM changes WHERE seq > ?1 ORDER BY seq"
                            " LIMIT ?2",
        [S_CHANGES_MAX] = "SELECT COALESCE(MAX(seq), 0) FROM changes",
        /* The newest stays: seqs go on from it, never back to 1. */
        [S_CHANGES_PRUNE] = "DELETE FROM changes WHERE created < ?1 AND seq < (SELECT MAX(seq) FROM changes)",
        [S_COUNTS] = "SELECT (SELECT COUNT(*) FROM totp_tokens WHERE state = 2),"
                     " (SELECT COUNT(*) FROM totp_tokens WHERE state = 1),"
                     " (SELECT COUNT(*) FROM totp_tickets), (SELECT COUNT(*) FROM auth_failures)",
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

static int sqlite_open(const struct phi_store_params *p, const char *identities_location, void **ret) {
        const char *location = p->location;
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
            phi_sqlite_bind_text(st, 9, x->boot_id) < 0 || phi_sqlite_bind_i64(st, 10, x->opened) < 0 ||
            phi_sqlite_bind_text(st, 11, x->request_id) < 0)
                return -ENOMEM;
        r = phi_sqlite_step_done(st);
        return r;
}

/* A text column into dst, cut to size - 1 bytes as snprintf would (a
 * listing of a million audit rows calls it seven times a row). */
static void session_col(sqlite3_stmt *st, int i, char *dst, size_t size) {
        const unsigned char *v = sqlite3_column_text(st, i);
        size_t n = v ? (size_t) sqlite3_column_bytes(st, i) : 0;

        if (n >= size)
                n = size - 1;
        if (n)
                memcpy(dst, v, n);
        dst[n] = '\0';
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
        session_col(st, 10, x->request_id, sizeof(x->request_id));
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

static int elev_bind(sqlite3_stmt *st, const struct phi_elev_request *r, bool all) {
        /* An UPDATE names only some of the parameters; binding the rest is harmless. */
        (void) all;
        if (phi_sqlite_bind_text(st, 1, r->id) < 0 || phi_sqlite_bind_text(st, 2, r->requester) < 0 ||
            phi_sqlite_bind_text(st, 3, r->role) < 0 || phi_sqlite_bind_text(st, 4, r->grant_group) < 0 ||
            phi_sqlite_bind_text(st, 5, r->host) < 0 || phi_sqlite_bind_text(st, 6, r->reason) < 0 ||
            phi_sqlite_bind_text(st, 7, r->ticket) < 0 || phi_sqlite_bind_i64(st, 8, (uint64_t) r->state) < 0 ||
            phi_sqlite_bind_i64(st, 9, r->breakglass ? 1 : 0) < 0 || phi_sqlite_bind_i64(st, 10, r->duration) < 0 ||
            phi_sqlite_bind_i64(st, 11, r->start_at) < 0 || phi_sqlite_bind_i64(st, 12, r->created) < 0 ||
            phi_sqlite_bind_i64(st, 13, r->pending_until) < 0 ||
            phi_sqlite_bind_i64(st, 14, r->approvals_needed) < 0 || phi_sqlite_bind_i64(st, 15, r->approvals) < 0 ||
            phi_sqlite_bind_i64(st, 16, r->denials) < 0 || phi_sqlite_bind_i64(st, 17, r->starts) < 0 ||
            phi_sqlite_bind_i64(st, 18, r->expires) < 0 || phi_sqlite_bind_i64(st, 19, r->ended) < 0 ||
            phi_sqlite_bind_text(st, 20, r->ended_by) < 0 || phi_sqlite_bind_text(st, 21, r->end_reason) < 0 ||
            phi_sqlite_bind_text(st, 22, r->reviewer) < 0 || phi_sqlite_bind_text(st, 23, r->review_note) < 0 ||
            phi_sqlite_bind_i64(st, 24, r->reviewed) < 0)
                return -ENOMEM;
        return 0;
}

static void elev_row(sqlite3_stmt *st, struct phi_elev_request *r) {
        *r = (struct phi_elev_request){ 0 };
        session_col(st, 0, r->id, sizeof(r->id));
        session_col(st, 1, r->requester, sizeof(r->requester));
        session_col(st, 2, r->role, sizeof(r->role));
        session_col(st, 3, r->grant_group, sizeof(r->grant_group));
        session_col(st, 4, r->host, sizeof(r->host));
        session_col(st, 5, r->reason, sizeof(r->reason));
        session_col(st, 6, r->ticket, sizeof(r->ticket));
        r->state = (enum phi_elev_state) sqlite3_column_int(st, 7);
        r->breakglass = sqlite3_column_int(st, 8) != 0;
        r->duration = (uint64_t) sqlite3_column_int64(st, 9);
        r->start_at = (uint64_t) sqlite3_column_int64(st, 10);
        r->created = (uint64_t) sqlite3_column_int64(st, 11);
        r->pending_until = (uint64_t) sqlite3_column_int64(st, 12);
        r->approvals_needed = (unsigned) sqlite3_column_int(st, 13);
        r->approvals = (unsigned) sqlite3_column_int(st, 14);
        r->denials = (unsigned) sqlite3_column_int(st, 15);
        r->starts = (uint64_t) sqlite3_column_int64(st, 16);
        r->expires = (uint64_t) sqlite3_column_int64(st, 17);
        r->ended = (uint64_t) sqlite3_column_int64(st, 18);
        session_col(st, 19, r->ended_by, sizeof(r->ended_by));
        session_col(st, 20, r->end_reason, sizeof(r->end_reason));
        session_col(st, 21, r->reviewer, sizeof(r->reviewer));
        session_col(st, 22, r->review_note, sizeof(r->review_note));
        r->reviewed = (uint64_t) sqlite3_column_int64(st, 23);
}

static int sqlite_elev_put(void *b, const struct phi_elev_request *r) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_ELEV_PUT);

        if (!st || elev_bind(st, r, true) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int sqlite_elev_update(void *b, const struct phi_elev_request *r) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_ELEV_UPDATE);
        int r2;

        if (!st || elev_bind(st, r, false) < 0)
                return -ENOMEM;
        if ((r2 = phi_sqlite_step_done(st)) < 0)
                return r2;
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

static int sqlite_elev_get(void *b, const char *id, struct phi_elev_request *ret) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_ELEV_GET);
        int rc, r = 0;

        if (!st || phi_sqlite_bind_text(st, 1, id) < 0)
                return -ENOMEM;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                elev_row(st, ret);
        else
                r = rc == SQLITE_DONE ? -ENOENT : phi_sqlite_error(rc);
        (void) sqlite3_reset(st);
        return r;
}

static int sqlite_elev_decision_add(void *b, const char *id, const char *approver, bool approve, const char *reason,
                                    uint64_t when) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_ELEV_DECISION_ADD);

        if (!st || phi_sqlite_bind_text(st, 1, id) < 0 || phi_sqlite_bind_text(st, 2, approver) < 0 ||
            phi_sqlite_bind_i64(st, 3, approve ? 1 : 0) < 0 || phi_sqlite_bind_text(st, 4, reason) < 0 ||
            phi_sqlite_bind_i64(st, 5, when) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int sqlite_elev_list(void *b, unsigned state_mask, const char *requester, const char *after, size_t max,
                            struct phi_elev_request **ret, size_t *ret_n) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_ELEV_LIST);
        struct phi_elev_request *v = NULL;
        size_t n = 0;
        int rc, r = 0;

        if (!st || phi_sqlite_bind_i64(st, 1, state_mask) < 0 || phi_sqlite_bind_text(st, 2, requester) < 0 ||
            phi_sqlite_bind_text(st, 3, after) < 0 || phi_sqlite_bind_i64(st, 4, max) < 0)
                return -ENOMEM;
        if (max > 0 && !(v = calloc(max, sizeof(*v))))
                r = -ENOMEM;
        while (r == 0 && n < max && (rc = sqlite3_step(st)) != SQLITE_DONE) {
                if (rc != SQLITE_ROW) {
                        r = phi_sqlite_error(rc);
                        break;
                }
                elev_row(st, &v[n++]);
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

/* ------------------------------------------------------ backup and restore */

static int counts_read(struct phi_sqlite_db *s, sqlite3_stmt *st, struct phi_store_counts *ret) {
        struct phi_store_counts c = { 0 };
        int rc, r;

        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                c.tokens_active = (uint64_t) sqlite3_column_int64(st, 0);
                c.tokens_pending = (uint64_t) sqlite3_column_int64(st, 1);
                c.tickets = (uint64_t) sqlite3_column_int64(st, 2);
                c.failure_counters = (uint64_t) sqlite3_column_int64(st, 3);
                r = 0;
        } else
                r = phi_sqlite_error(rc ? rc : SQLITE_ERROR);
        (void) sqlite3_reset(st);
        if (r == 0 && (r = phi_sqlite_version(s, &c.schema_version)) == 0)
                *ret = c;
        return r;
}

static int sqlite_counts(void *b, struct phi_store_counts *ret) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_COUNTS);

        return st ? counts_read(s, st, ret) : -ENOMEM;
}

/* PRAGMA integrity_check answers one row "ok", or rows naming each problem:
 * the first goes to why. -EUCLEAN for a damaged file (or one that is no
 * SQLite database at all). */
static int integrity_check(sqlite3 *db, char *why, size_t why_len) {
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *t = (const char *) sqlite3_column_text(st, 0);
                if (!t || strcmp(t, "ok") != 0) {
                        snprintf(why, why_len, "integrity check failed: %s", t ? t : "(no answer)");
                        r = -EUCLEAN;
                }
        } else {
                snprintf(why, why_len, "%s", sqlite3_errmsg(db));
                r = phi_sqlite_error(rc ? rc : SQLITE_ERROR);
                if (r == -EIO)
                        r = -EUCLEAN;
        }
        sqlite3_finalize(st);
        return r;
}

/* Pages copied per sqlite3_backup_step(): the copy reads a snapshot held
 * open by its own read transaction, so steps are for progress, not for
 * letting writers in (in WAL mode a reader never blocks the writer). */
#define BACKUP_STEP_PAGES 256

/*
 * The copy: one read transaction on this handle's connection is opened
 * first and held to the end, and sqlite3_backup_step() copies from it. In
 * WAL mode that is a snapshot: the verifier goes on committing (its frames
 * go to the WAL; only checkpointing past the snapshot waits), and the copy
 * is the store as of the moment the transaction began. Without the held
 * transaction each step would read the newest state and restart the copy
 * whenever another connection had committed, which a steady login load
 * does every few milliseconds: the backup would never finish.
 */
static int sqlite_backup(void *b, const char *dest, struct phi_store_counts *ret) {
        struct phi_sqlite_db *s = b;
        struct phi_sqlite_db d = { 0 };
        sqlite3_backup *bk = NULL;
        sqlite3_stmt *st = NULL;
        char why[256];
        bool reading = false;
        int rc, r;

        rc = sqlite3_open_v2(dest, &d.db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                     SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOFOLLOW,
                             NULL);
        if ((r = phi_sqlite_error(rc)) < 0)
                goto out;
        (void) sqlite3_busy_timeout(d.db, 10000);
        /* BEGIN alone takes no lock; the first read makes the snapshot. */
        if ((r = phi_sqlite_exec(s, "BEGIN")) < 0)
                goto out;
        reading = true;
        if ((r = phi_sqlite_exec(s, "SELECT COUNT(*) FROM schema_migrations")) < 0)
                goto out;
        bk = sqlite3_backup_init(d.db, "main", s->db, "main");
        if (!bk) {
                r = phi_sqlite_error(sqlite3_errcode(d.db));
                goto out;
        }
        do
                rc = sqlite3_backup_step(bk, BACKUP_STEP_PAGES);
        while (rc == SQLITE_OK);
        {
                int frc = sqlite3_backup_finish(bk);
                bk = NULL;
                if (rc == SQLITE_DONE)
                        rc = frc;
        }
        if ((r = phi_sqlite_error(rc)) < 0)
                goto out;
        (void) phi_sqlite_exec(s, "COMMIT");
        reading = false;
        /* The copy carries the store's WAL flag; a file handed to someone
         * stands alone, with no -wal beside it to lose. */
        if ((r = phi_sqlite_exec(&d, "PRAGMA journal_mode=DELETE")) < 0)
                goto out;
        if ((r = integrity_check(d.db, why, sizeof(why))) < 0)
                goto out;
        rc = sqlite3_prepare_v2(d.db, statements[S_COUNTS], -1, &st, NULL);
        if ((r = phi_sqlite_error(rc)) < 0)
                goto out;
        r = counts_read(&d, st, ret);
out:
        sqlite3_finalize(st);
        if (bk)
                (void) sqlite3_backup_finish(bk);
        if (reading)
                (void) phi_sqlite_exec(s, "ROLLBACK");
        phi_sqlite_close(&d);
        return r;
}

static int sqlite_tokens_raise_floor(void *b, uint64_t step, uint64_t *ret_raised) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_TOKENS_RAISE_FLOOR);
        int r;

        if (!st || phi_sqlite_bind_i64(st, 1, step) < 0)
                return -ENOMEM;
        if ((r = phi_sqlite_step_done(st)) < 0)
                return r;
        *ret_raised = (uint64_t) sqlite3_changes(s->db);
        return 0;
}

static int sqlite_tickets_clear(void *b, uint64_t *ret_cleared) {
        struct phi_sqlite_db *s = b;
        int r = run_stmt(s, S_TICKETS_CLEAR);

        if (r == 0)
                *ret_cleared = (uint64_t) sqlite3_changes(s->db);
        return r;
}

unsigned phi_store_sqlite_schema_latest(void) {
        return migrations[PHI_ELEMENTSOF(migrations) - 1].version;
}

int phi_store_sqlite_file_check(const char *path, unsigned *ret_version, char *why, size_t why_len) {
        static const char *const tables =
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN"
                " ('schema_migrations', 'totp_tokens', 'totp_tickets', 'auth_failures')";
        struct phi_sqlite_db d = { 0 };
        sqlite3_stmt *st = NULL;
        int64_t n = 0;
        unsigned version = 0;
        int rc, r;

        snprintf(why, why_len, "not checked");
        /* Read-write: a copy of a store in WAL mode needs its -shm to be read.
         * Never created here: the file is the caller's copy. */
        rc = sqlite3_open_v2(path, &d.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE |
                                                  SQLITE_OPEN_NOFOLLOW, NULL);
        if (rc != SQLITE_OK) {
                snprintf(why, why_len, "cannot open it: %s", d.db ? sqlite3_errmsg(d.db) : sqlite3_errstr(rc));
                r = phi_sqlite_error(rc);
                goto out;
        }
        if ((r = integrity_check(d.db, why, why_len)) < 0)
                goto out;
        rc = sqlite3_prepare_v2(d.db, tables, -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
                n = sqlite3_column_int64(st, 0);
        if (rc != SQLITE_ROW) {
                snprintf(why, why_len, "%s", sqlite3_errmsg(d.db));
                r = phi_sqlite_error(rc);
                goto out;
        }
        if (n != 4 || phi_sqlite_version(&d, &version) < 0 || version < 2) {
                snprintf(why, why_len, "an SQLite database, but not a phi store (no TOTP tables)");
                r = -EMEDIUMTYPE;
                goto out;
        }
        if (version > phi_store_sqlite_schema_latest()) {
                snprintf(why, why_len, "schema version %u is newer than this phiaccessd knows (%u)", version,
                         phi_store_sqlite_schema_latest());
                r = -EPROTONOSUPPORT;
                goto out;
        }
        snprintf(why, why_len, "ok");
        *ret_version = version;
        r = 0;
out:
        sqlite3_finalize(st);
        phi_sqlite_close(&d);
        return r;
}

static int sqlite_audit_append(void *b, const struct phi_audit_row *x) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_AUDIT_APPEND);

        if (!st || phi_sqlite_bind_i64(st, 1, x->seq) < 0 || phi_sqlite_bind_i64(st, 2, x->time_us) < 0 ||
            phi_sqlite_bind_text(st, 3, x->event) < 0 || phi_sqlite_bind_text(st, 4, x->user) < 0 ||
            phi_sqlite_bind_text(st, 5, x->actor) < 0 || phi_sqlite_bind_text(st, 6, x->role) < 0 ||
            phi_sqlite_bind_text(st, 7, x->request_id) < 0 || phi_sqlite_bind_text(st, 8, x->host) < 0 ||
            phi_sqlite_bind_text(st, 9, x->leaf) < 0 || phi_sqlite_bind_text(st, 10, x->leaf_hash) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int text_get(sqlite3_stmt *st, char *out, size_t cap) {
        const unsigned char *v;
        int rc = sqlite3_step(st), r = 0;

        if (rc == SQLITE_ROW) {
                v = sqlite3_column_text(st, 0);
                if (!v || (size_t) sqlite3_column_bytes(st, 0) >= cap)
                        r = -EUCLEAN;
                else
                        snprintf(out, cap, "%s", (const char *) v);
        } else
                r = rc == SQLITE_DONE ? -ENOENT : phi_sqlite_error(rc);
        (void) sqlite3_reset(st);
        return r;
}

static int sqlite_audit_tree_get(void *b, char *hex, size_t cap) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_AUDIT_TREE_GET);

        return st ? text_get(st, hex, cap) : -ENOMEM;
}

static int sqlite_audit_tree_put(void *b, const char *hex) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_AUDIT_TREE_PUT);

        if (!st || phi_sqlite_bind_text(st, 1, hex) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int sqlite_audit_leaf_hash(void *b, uint64_t seq, char hex[65]) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_AUDIT_LEAF_HASH);

        if (!st || phi_sqlite_bind_i64(st, 1, seq) < 0)
                return -ENOMEM;
        return text_get(st, hex, 65);
}

static int sqlite_audit_rows(void *b, const struct phi_audit_filter *f, uint64_t from, size_t max,
                             struct phi_audit_row **ret, size_t *ret_n) {
        static const struct phi_audit_filter none = { 0 };
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_AUDIT_ROWS);
        struct phi_audit_row *v = NULL;
        size_t n = 0;
        int rc, r = 0;

        if (!f)
                f = &none;
        if (!st || phi_sqlite_bind_i64(st, 1, from) < 0 || phi_sqlite_bind_text(st, 2, f->event) < 0 ||
            phi_sqlite_bind_text(st, 3, f->user) < 0 || phi_sqlite_bind_text(st, 4, f->actor) < 0 ||
            phi_sqlite_bind_text(st, 5, f->role) < 0 || phi_sqlite_bind_text(st, 6, f->request_id) < 0 ||
            phi_sqlite_bind_text(st, 7, f->host) < 0 || phi_sqlite_bind_i64(st, 8, f->since_us) < 0 ||
            phi_sqlite_bind_i64(st, 9, f->until_us) < 0 || phi_sqlite_bind_i64(st, 10, max) < 0)
                return -ENOMEM;
        if (max > 0 && !(v = calloc(max, sizeof(*v))))
                r = -ENOMEM;
        while (r == 0 && n < max && (rc = sqlite3_step(st)) != SQLITE_DONE) {
                struct phi_audit_row *x = &v[n];
                if (rc != SQLITE_ROW) {
                        r = phi_sqlite_error(rc);
                        break;
                }
                x->seq = (uint64_t) sqlite3_column_int64(st, 0);
                x->time_us = (uint64_t) sqlite3_column_int64(st, 1);
                session_col(st, 2, x->event, sizeof(x->event));
                session_col(st, 3, x->user, sizeof(x->user));
                session_col(st, 4, x->actor, sizeof(x->actor));
                session_col(st, 5, x->role, sizeof(x->role));
                session_col(st, 6, x->request_id, sizeof(x->request_id));
                session_col(st, 7, x->host, sizeof(x->host));
                session_col(st, 9, x->leaf_hash, sizeof(x->leaf_hash));
                if (!(x->leaf = phi_sqlite_col_dup(st, 8))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        (void) sqlite3_reset(st);
        if (r < 0) {
                phi_audit_rows_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int sqlite_audit_checkpoint_put(void *b, uint64_t size, const char *note, uint64_t created) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_AUDIT_CHECKPOINT_PUT);

        if (!st || phi_sqlite_bind_i64(st, 1, size) < 0 || phi_sqlite_bind_text(st, 2, note) < 0 ||
            phi_sqlite_bind_i64(st, 3, created) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int sqlite_audit_checkpoints(void *b, uint64_t from_size, size_t max, struct phi_audit_checkpoint_row **ret,
                                    size_t *ret_n) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_AUDIT_CHECKPOINTS);
        struct phi_audit_checkpoint_row *v = NULL;
        size_t n = 0;
        int rc, r = 0;

        if (!st || phi_sqlite_bind_i64(st, 1, from_size) < 0 || phi_sqlite_bind_i64(st, 2, max) < 0)
                return -ENOMEM;
        if (max > 0 && !(v = calloc(max, sizeof(*v))))
                r = -ENOMEM;
        while (r == 0 && n < max && (rc = sqlite3_step(st)) != SQLITE_DONE) {
                if (rc != SQLITE_ROW) {
                        r = phi_sqlite_error(rc);
                        break;
                }
                v[n].size = (uint64_t) sqlite3_column_int64(st, 0);
                v[n].created = (uint64_t) sqlite3_column_int64(st, 1);
                if (!(v[n].note = phi_sqlite_col_dup(st, 2))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        (void) sqlite3_reset(st);
        if (r < 0) {
                phi_audit_checkpoint_rows_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* The write lock is the database's, taken by BEGIN IMMEDIATE: a plain read. */
static int sqlite_audit_tree_lock(void *b, char *hex, size_t cap) {
        return sqlite_audit_tree_get(b, hex, cap);
}

static int sqlite_audit_checkpoint_last(void *b, uint64_t *ret_size, uint64_t *ret_created) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_AUDIT_CHECKPOINT_LAST);
        int rc, r = 0;

        if (!st)
                return -ENOMEM;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret_size = (uint64_t) sqlite3_column_int64(st, 0);
                *ret_created = (uint64_t) sqlite3_column_int64(st, 1);
        } else
                r = rc == SQLITE_DONE ? -ENOENT : phi_sqlite_error(rc);
        (void) sqlite3_reset(st);
        return r;
}

static int sqlite_elev_transition(void *b, const struct phi_elev_request *r, const struct phi_elev_request *old) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_ELEV_TRANSITION);
        int r2;

        if (!st || elev_bind(st, r, false) < 0 || phi_sqlite_bind_i64(st, 25, (uint64_t) old->state) < 0 ||
            phi_sqlite_bind_i64(st, 26, old->approvals) < 0 || phi_sqlite_bind_i64(st, 27, old->denials) < 0 ||
            phi_sqlite_bind_i64(st, 28, old->reviewed) < 0)
                return -ENOMEM;
        if ((r2 = phi_sqlite_step_done(st)) < 0)
                return r2;
        if (sqlite3_changes(s->db) > 0)
                return 0;
        /* None changed: gone, or no longer as read. */
        return sqlite_elev_get(b, r->id, &(struct phi_elev_request){ 0 }) == -ENOENT ? -ENOENT : -ESTALE;
}

static int sqlite_change_add(void *b, enum phi_change_kind kind, const char *subject, const char *host,
                             uint64_t created) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_CHANGE_ADD);

        if (!st || phi_sqlite_bind_i64(st, 1, (uint64_t) kind) < 0 || phi_sqlite_bind_text(st, 2, subject) < 0 ||
            phi_sqlite_bind_text(st, 3, host) < 0 || phi_sqlite_bind_i64(st, 4, created) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int sqlite_changes_after(void *b, uint64_t after, size_t max, struct phi_change **ret, size_t *ret_n) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_CHANGES_AFTER);
        struct phi_change *v = NULL;
        size_t n = 0;
        int rc, r = 0;

        if (!st || phi_sqlite_bind_i64(st, 1, after) < 0 || phi_sqlite_bind_i64(st, 2, max) < 0)
                return -ENOMEM;
        if (max > 0 && !(v = calloc(max, sizeof(*v))))
                r = -ENOMEM;
        while (r == 0 && n < max && (rc = sqlite3_step(st)) != SQLITE_DONE) {
                if (rc != SQLITE_ROW) {
                        r = phi_sqlite_error(rc);
                        break;
                }
                v[n].seq = (uint64_t) sqlite3_column_int64(st, 0);
                v[n].kind = (enum phi_change_kind) sqlite3_column_int(st, 1);
                session_col(st, 2, v[n].subject, sizeof(v[n].subject));
                session_col(st, 3, v[n].host, sizeof(v[n].host));
                v[n].created = (uint64_t) sqlite3_column_int64(st, 4);
                n++;
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

static int sqlite_changes_max(void *b, uint64_t *ret) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_CHANGES_MAX);
        int rc, r = 0;

        if (!st)
                return -ENOMEM;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (uint64_t) sqlite3_column_int64(st, 0);
        else
                r = phi_sqlite_error(rc == SQLITE_DONE ? SQLITE_ERROR : rc);
        (void) sqlite3_reset(st);
        return r;
}

static int sqlite_changes_prune(void *b, uint64_t before) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_CHANGES_PRUNE);

        if (!st || phi_sqlite_bind_i64(st, 1, before) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

/* The file is where it is; it answers when it can be read. */
static int sqlite_probe(void *b, char *where, size_t where_len, bool *ret_reachable) {
        struct phi_sqlite_db *s = b;
        const char *file = sqlite3_db_filename(s->db, "main");
        unsigned v;

        snprintf(where, where_len, "%s", file && *file ? file : ":memory:");
        *ret_reachable = phi_sqlite_version(s, &v) == 0;
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
        .elev_put = sqlite_elev_put,
        .elev_update = sqlite_elev_update,
        .elev_get = sqlite_elev_get,
        .elev_decision_add = sqlite_elev_decision_add,
        .elev_list = sqlite_elev_list,
        .audit_append = sqlite_audit_append,
        .audit_tree_get = sqlite_audit_tree_get,
        .audit_tree_put = sqlite_audit_tree_put,
        .audit_leaf_hash = sqlite_audit_leaf_hash,
        .audit_rows = sqlite_audit_rows,
        .audit_checkpoint_put = sqlite_audit_checkpoint_put,
        .audit_checkpoints = sqlite_audit_checkpoints,
        .counts = sqlite_counts,
        .backup = sqlite_backup,
        .tokens_raise_floor = sqlite_tokens_raise_floor,
        .tickets_clear = sqlite_tickets_clear,
        .audit_tree_lock = sqlite_audit_tree_lock,
        .audit_checkpoint_last = sqlite_audit_checkpoint_last,
        .elev_transition = sqlite_elev_transition,
        .change_add = sqlite_change_add,
        .changes_after = sqlite_changes_after,
        .changes_max = sqlite_changes_max,
        .changes_prune = sqlite_changes_prune,
        .probe = sqlite_probe,
};

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SQLite backend of the store: WAL mode so the LDAP thread can write while the
 * socket thread reads, synchronous=FULL because an audit or grant record must be
 * durable before its answer goes out (later issues), foreign keys on. */

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "phi/fs.h"
#include "store.h"

/* Append-only: a migration once shipped is never edited. Later issues add their
 * tables (tokens, requests, grants, audit) as new rows. */
static const struct {
        unsigned version;
        const char *name;
        const char *sql;
} migrations[] = {
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
};

enum {
        S_USER_PUT,
        S_GROUP_PUT,
        S_MEMBERS_DEL,
        S_MEMBER_ADD,
        S_USER_DEL,
        S_GROUP_DEL,
        S_USER_GET,
        S_USER_GET_UID,
        S_USER_GROUPS,
        S_MEMBERSHIP_ADD,
        S_TOKEN_GET,
        S_TOKEN_PUT,
        S_TOKEN_ADVANCE,
        S_TOKEN_ACTIVATE_DROP,
        S_TOKEN_ACTIVATE,
        S_TOKEN_DELETE,
        S_TICKET_PUT,
        S_TICKET_GET,
        S_TICKET_DELETE,
        S_FAILURES_GET,
        S_FAILURES_PUT,
        S_FAILURES_DELETE,
        S_FAILURES_PRUNE,
        S_BEGIN,
        S_COMMIT,
        S_ROLLBACK,
        _S_MAX,
};

static const char *const statements[_S_MAX] = {
        [S_USER_PUT] = "INSERT INTO users (key, dn, name, uid, gid, gecos, home, shell, modified)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                       " ON CONFLICT (key) DO UPDATE SET dn = ?2, name = ?3, uid = ?4, gid = ?5,"
                       " gecos = ?6, home = ?7, shell = ?8, modified = ?9",
        [S_GROUP_PUT] = "INSERT INTO groups (key, dn, name, gid, modified) VALUES (?1, ?2, ?3, ?4, ?5)"
                        " ON CONFLICT (key) DO UPDATE SET dn = ?2, name = ?3, gid = ?4, modified = ?5",
        [S_MEMBERS_DEL] = "DELETE FROM group_members WHERE group_key = ?1",
        [S_MEMBER_ADD] = "INSERT OR IGNORE INTO group_members (group_key, kind, value) VALUES (?1, ?2, ?3)",
        [S_USER_DEL] = "DELETE FROM users WHERE key = ?1",
        [S_GROUP_DEL] = "DELETE FROM groups WHERE key = ?1",
        [S_USER_GET] = "SELECT key, dn, name, uid, gid, gecos, home, shell FROM users WHERE name = ?1",
        [S_USER_GET_UID] = "SELECT key, dn, name, uid, gid, gecos, home, shell FROM users WHERE uid = ?1",
        [S_USER_GROUPS] = "SELECT group_name FROM memberships WHERE user_name = ?1 ORDER BY group_name",
        [S_MEMBERSHIP_ADD] = "INSERT OR IGNORE INTO memberships (user_name, group_name) VALUES (?1, ?2)",
        [S_TOKEN_GET] = "SELECT algorithm, digits, nonce, sealed, watermark, created, enrolled"
                        " FROM totp_tokens WHERE user = ?1 AND state = ?2",
        [S_TOKEN_PUT] = "INSERT OR REPLACE INTO totp_tokens (user, state, algorithm, digits, nonce,"
                        " sealed, watermark, created, enrolled) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        /* The WHERE is the replay rule's last line: of two racing acceptances of
         * one step, only one changes a row. */
        [S_TOKEN_ADVANCE] = "UPDATE totp_tokens SET watermark = ?3"
                            " WHERE user = ?1 AND state = ?2 AND watermark < ?3",
        [S_TOKEN_ACTIVATE_DROP] = "DELETE FROM totp_tokens WHERE user = ?1 AND state = 2",
        [S_TOKEN_ACTIVATE] = "UPDATE totp_tokens SET state = 2, enrolled = ?2 WHERE user = ?1 AND state = 1",
        [S_TOKEN_DELETE] = "DELETE FROM totp_tokens WHERE user = ?1",
        [S_TICKET_PUT] = "INSERT OR REPLACE INTO totp_tickets (user, expires, created) VALUES (?1, ?2, ?3)",
        [S_TICKET_GET] = "SELECT expires FROM totp_tickets WHERE user = ?1",
        [S_TICKET_DELETE] = "DELETE FROM totp_tickets WHERE user = ?1",
        [S_FAILURES_GET] = "SELECT count, window_start, locked_until FROM auth_failures"
                           " WHERE kind = ?1 AND key = ?2",
        [S_FAILURES_PUT] = "INSERT OR REPLACE INTO auth_failures (kind, key, count, window_start,"
                           " locked_until) VALUES (?1, ?2, ?3, ?4, ?5)",
        [S_FAILURES_DELETE] = "DELETE FROM auth_failures WHERE kind = ?1 AND key = ?2",
        [S_FAILURES_PRUNE] = "DELETE FROM auth_failures WHERE locked_until <= ?1 AND window_start + ?2 <= ?1",
        /* Prepared once like the rest: every TOTP round runs them, and
         * sqlite3_exec() would parse them each time. */
        [S_BEGIN] = "BEGIN IMMEDIATE",
        [S_COMMIT] = "COMMIT",
        [S_ROLLBACK] = "ROLLBACK",
};

struct sqlite_store {
        sqlite3 *db;
        sqlite3_stmt *stmt[_S_MAX];
};

static int sql_error(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_DONE:
        case SQLITE_ROW:
                return 0;
        case SQLITE_CONSTRAINT: return -EEXIST;
        case SQLITE_NOMEM: return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return -EBUSY;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH: return -EACCES;
        case SQLITE_FULL: return -ENOSPC;
        case SQLITE_CANTOPEN: return -ENOENT;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB: return -EUCLEAN;
        default: return -EIO;
        }
}

static int exec(struct sqlite_store *s, const char *sql) {
        return sql_error(sqlite3_exec(s->db, sql, NULL, NULL, NULL));
}

static sqlite3_stmt *stmt(struct sqlite_store *s, int which) {
        sqlite3_stmt *st = s->stmt[which];

        if (!st) {
                if (sqlite3_prepare_v3(s->db, statements[which], -1, SQLITE_PREPARE_PERSISTENT,
                                       &st, NULL) != SQLITE_OK)
                        return NULL;
                s->stmt[which] = st;
        }
        (void) sqlite3_reset(st);
        (void) sqlite3_clear_bindings(st);
        return st;
}

static int step_done(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        int r = rc == SQLITE_DONE ? 0 : sql_error(rc ? rc : SQLITE_ERROR);

        (void) sqlite3_reset(st);
        return r;
}

static int bind_text(sqlite3_stmt *st, int i, const char *v) {
        return sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC) == SQLITE_OK ? 0 : -ENOMEM;
}

static int current_version(struct sqlite_store *s, unsigned *ret) {
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sql_error(rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (unsigned) sqlite3_column_int64(st, 0);
        else
                r = sql_error(rc);
        sqlite3_finalize(st);
        return r;
}

static int migrate(struct sqlite_store *s) {
        unsigned have = 0;
        int r;

        if ((r = exec(s, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                         "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL)")) < 0 ||
            (r = current_version(s, &have)) < 0)
                return r;
        if (have > migrations[PHI_ELEMENTSOF(migrations) - 1].version)
                return -EPROTONOSUPPORT;
        for (size_t i = 0; i < PHI_ELEMENTSOF(migrations); i++) {
                char record[256];
                if (migrations[i].version <= have)
                        continue;
                snprintf(record, sizeof(record),
                         "INSERT INTO schema_migrations (version, name, applied) VALUES (%u, '%s', %lld)",
                         migrations[i].version, migrations[i].name, (long long) time(NULL));
                if ((r = exec(s, "BEGIN IMMEDIATE")) < 0)
                        return r;
                if ((r = exec(s, migrations[i].sql)) < 0 || (r = exec(s, record)) < 0 ||
                    (r = exec(s, "COMMIT")) < 0) {
                        (void) exec(s, "ROLLBACK");
                        return r;
                }
        }
        return 0;
}

static void sqlite_close(void *b) {
        struct sqlite_store *s = b;

        if (!s)
                return;
        for (size_t i = 0; i < _S_MAX; i++)
                sqlite3_finalize(s->stmt[i]);
        sqlite3_close_v2(s->db);
        free(s);
}

static int sqlite_open(const char *location, void **ret) {
        struct sqlite_store *s = calloc(1, sizeof(*s));
        int rc, r;

        if (!s)
                return -ENOMEM;
        /* The store holds identities and secrets: never readable by others,
         * whatever the umask of whoever started us. The file is created 0600 here
         * (sqlite gives its -wal and -shm files the database's mode), not under
         * umask(0077): the umask is process-wide, and the sync thread opens its
         * store while the main thread binds the socket, which came out 0600.
         *
         * Only a file that does not exist yet is opened outside SQLite (O_EXCL):
         * closing any descriptor of the database drops every POSIX lock this
         * process holds on it, those of the connections other threads already
         * have open included. Without its locks the daemon looks absent to any
         * other process, and an sqlite3 shell closing the file would take itself
         * for the last user, check-point and delete the -wal and -shm files the
         * daemon is still writing: every later commit, replay watermarks
         * included, would live only in a deleted file, lost if the daemon then
         * crashed, and the shell's own writes would go unseen. */
        if (*location && strcmp(location, ":memory:") != 0) {
                int fd = open(location, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                if (fd >= 0) {
                        (void) close(fd);   /* new: nobody here can hold a lock on it yet */
                        /* SQLite syncs the directory for its -wal file, not for
                         * the database it is handed: a new store's name must not
                         * vanish at a power loss and come back empty. */
                        if ((r = phi_fs_fsync_parent(location)) < 0)
                                goto fail;
                } else if (errno != EEXIST) {
                        r = phi_negative_errno();
                        goto fail;
                }
        }
        rc = sqlite3_open_v2(location, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                     SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOFOLLOW,
                             NULL);
        if (rc != SQLITE_OK) {
                r = sql_error(rc);
                goto fail;
        }
        (void) sqlite3_busy_timeout(s->db, 10000);
        if ((r = exec(s, "PRAGMA journal_mode=WAL")) < 0 ||
            (r = exec(s, "PRAGMA synchronous=FULL")) < 0 ||
            (r = exec(s, "PRAGMA foreign_keys=ON")) < 0 || (r = migrate(s)) < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        sqlite_close(s);
        return r;
}

static int run_stmt(struct sqlite_store *s, int which) {
        sqlite3_stmt *st = stmt(s, which);

        return st ? step_done(st) : -ENOMEM;
}

static int sqlite_begin(void *b) { return run_stmt(b, S_BEGIN); }
static int sqlite_commit(void *b) { return run_stmt(b, S_COMMIT); }
static void sqlite_rollback(void *b) { (void) run_stmt(b, S_ROLLBACK); }
static int sqlite_schema_version(void *b, unsigned *ret) { return current_version(b, ret); }

static int sqlite_user_put(void *b, const struct phi_user *u) {
        struct sqlite_store *s = b;
        sqlite3_stmt *st = stmt(s, S_USER_PUT);

        if (!st)
                return -ENOMEM;
        if (bind_text(st, 1, u->key) < 0 || bind_text(st, 2, u->dn) < 0 ||
            bind_text(st, 3, u->name) < 0 || sqlite3_bind_int64(st, 4, u->uid) != SQLITE_OK ||
            sqlite3_bind_int64(st, 5, u->gid) != SQLITE_OK || bind_text(st, 6, u->gecos) < 0 ||
            bind_text(st, 7, u->home) < 0 || bind_text(st, 8, u->shell) < 0 ||
            sqlite3_bind_int64(st, 9, (sqlite3_int64) time(NULL)) != SQLITE_OK)
                return -ENOMEM;
        return step_done(st);
}

static int sqlite_group_put(void *b, const struct phi_group *g) {
        struct sqlite_store *s = b;
        sqlite3_stmt *st = stmt(s, S_GROUP_PUT);
        int r;

        if (!st)
                return -ENOMEM;
        if (bind_text(st, 1, g->key) < 0 || bind_text(st, 2, g->dn) < 0 ||
            bind_text(st, 3, g->name) < 0 || sqlite3_bind_int64(st, 4, g->gid) != SQLITE_OK ||
            sqlite3_bind_int64(st, 5, (sqlite3_int64) time(NULL)) != SQLITE_OK)
                return -ENOMEM;
        if ((r = step_done(st)) < 0)
                return r;
        st = stmt(s, S_MEMBERS_DEL);
        if (!st || bind_text(st, 1, g->key) < 0)
                return -ENOMEM;
        if ((r = step_done(st)) < 0)
                return r;
        for (int kind = 1; kind <= 2; kind++) {
                char **v = kind == 1 ? g->member_uids : g->member_dns;
                size_t n = kind == 1 ? g->n_member_uids : g->n_member_dns;
                for (size_t i = 0; i < n; i++) {
                        st = stmt(s, S_MEMBER_ADD);
                        if (!st || bind_text(st, 1, g->key) < 0 ||
                            sqlite3_bind_int(st, 2, kind) != SQLITE_OK || bind_text(st, 3, v[i]) < 0)
                                return -ENOMEM;
                        if ((r = step_done(st)) < 0)
                                return r;
                }
        }
        return 0;
}

static int sqlite_entry_delete(void *b, const char *key, bool *ret_found) {
        struct sqlite_store *s = b;
        bool found = false;
        int r;

        for (int which = S_USER_DEL; which <= S_GROUP_DEL; which++) {
                sqlite3_stmt *st = stmt(s, which);
                if (!st || bind_text(st, 1, key) < 0)
                        return -ENOMEM;
                if ((r = step_done(st)) < 0)
                        return r;
                if (sqlite3_changes(s->db) > 0)
                        found = true;
        }
        *ret_found = found;
        return 0;
}

static int sqlite_identities_clear(void *b) {
        return exec(b, "DELETE FROM group_members; DELETE FROM groups; DELETE FROM users;");
}

static char *col_dup(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);
        return strdup(t ? (const char *) t : "");
}

static int user_from_row(sqlite3_stmt *st, struct phi_user *u) {
        *u = (struct phi_user){
                .key = col_dup(st, 0), .dn = col_dup(st, 1), .name = col_dup(st, 2),
                .uid = (uint32_t) sqlite3_column_int64(st, 3),
                .gid = (uint32_t) sqlite3_column_int64(st, 4),
                .gecos = col_dup(st, 5), .home = col_dup(st, 6), .shell = col_dup(st, 7),
        };
        if (!u->key || !u->dn || !u->name || !u->gecos || !u->home || !u->shell) {
                phi_user_clear(u);
                return -ENOMEM;
        }
        return 0;
}

static int strv_push(char ***v, size_t *n, const char *s) {
        char **nv = reallocarray(*v, *n + 1, sizeof(char *));
        char *copy;

        if (!nv)
                return -ENOMEM;
        *v = nv;
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        nv[(*n)++] = copy;
        return 0;
}

static int sqlite_identities_load(void *b, struct phi_identities *ret) {
        struct sqlite_store *s = b;
        struct phi_identities ids = { 0 };
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db, "SELECT key, dn, name, uid, gid, gecos, home, shell FROM users",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sql_error(rc);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct phi_user u;
                if ((r = user_from_row(st, &u)) < 0)
                        break;
                if ((r = phi_identities_add_user(&ids, &u)) < 0) {
                        phi_user_clear(&u);
                        break;
                }
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = sql_error(rc);
        sqlite3_finalize(st);
        st = NULL;
        if (r < 0)
                goto fail;

        /* Groups come ordered by key and their members joined in the same order, so
         * one pass attaches members without a lookup per row. */
        rc = sqlite3_prepare_v2(s->db, "SELECT key, dn, name, gid FROM groups ORDER BY key", -1,
                                &st, NULL);
        if (rc != SQLITE_OK) {
                r = sql_error(rc);
                goto fail;
        }
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct phi_group g = {
                        .key = col_dup(st, 0), .dn = col_dup(st, 1), .name = col_dup(st, 2),
                        .gid = (uint32_t) sqlite3_column_int64(st, 3),
                };
                if (!g.key || !g.dn || !g.name)
                        r = -ENOMEM;
                if (r < 0 || (r = phi_identities_add_group(&ids, &g)) < 0) {
                        phi_group_clear(&g);
                        break;
                }
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = sql_error(rc);
        sqlite3_finalize(st);
        st = NULL;
        if (r < 0)
                goto fail;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT group_key, kind, value FROM group_members ORDER BY group_key",
                                -1, &st, NULL);
        if (rc != SQLITE_OK) {
                r = sql_error(rc);
                goto fail;
        }
        {
                size_t gi = 0;
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        const char *key = (const char *) sqlite3_column_text(st, 0);
                        const char *value = (const char *) sqlite3_column_text(st, 2);
                        int kind = sqlite3_column_int(st, 1);
                        struct phi_group *g;
                        if (!key || !value)
                                continue;
                        while (gi < ids.n_groups && strcmp(ids.groups[gi].key, key) < 0)
                                gi++;
                        if (gi >= ids.n_groups || strcmp(ids.groups[gi].key, key) != 0)
                                continue;
                        g = &ids.groups[gi];
                        r = kind == 1 ? strv_push(&g->member_uids, &g->n_member_uids, value)
                                      : strv_push(&g->member_dns, &g->n_member_dns, value);
                        if (r < 0)
                                break;
                }
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = sql_error(rc);
        sqlite3_finalize(st);
        if (r < 0)
                goto fail;
        *ret = ids;
        return 0;
fail:
        phi_identities_clear(&ids);
        return r;
}

static int sqlite_keys_load(void *b, char ***ret, size_t *ret_n, size_t *ret_n_users) {
        static const char *const queries[] = { "SELECT key FROM users ORDER BY key",
                                               "SELECT key FROM groups ORDER BY key" };
        struct sqlite_store *s = b;
        char **v = NULL;
        size_t n = 0, n_users = 0;
        int rc, r = 0;

        for (size_t q = 0; q < PHI_ELEMENTSOF(queries) && r == 0; q++) {
                sqlite3_stmt *st = NULL;
                rc = sqlite3_prepare_v2(s->db, queries[q], -1, &st, NULL);
                if (rc != SQLITE_OK) {
                        r = sql_error(rc);
                        break;
                }
                while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                        if ((r = strv_push(&v, &n, (const char *) sqlite3_column_text(st, 0))) < 0)
                                break;
                if (r == 0 && rc != SQLITE_DONE)
                        r = sql_error(rc);
                sqlite3_finalize(st);
                if (q == 0)
                        n_users = n;
        }
        if (r < 0) {
                phi_strv_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        *ret_n_users = n_users;
        return 0;
}

static int sqlite_memberships_replace(void *b, const struct phi_identities *ids,
                                      const struct phi_resolved *res) {
        struct sqlite_store *s = b;
        int r;

        if ((r = exec(s, "DELETE FROM memberships")) < 0)
                return r;
        for (size_t g = 0; g < res->n_groups && g < ids->n_groups; g++)
                for (size_t k = 0; k < res->groups[g].n; k++) {
                        sqlite3_stmt *st = stmt(s, S_MEMBERSHIP_ADD);
                        if (!st || bind_text(st, 1, res->groups[g].names[k]) < 0 ||
                            bind_text(st, 2, ids->groups[g].name) < 0)
                                return -ENOMEM;
                        if ((r = step_done(st)) < 0)
                                return r;
                }
        return 0;
}

static int count(struct sqlite_store *s, const char *sql, uint64_t *ret) {
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sql_error(rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (uint64_t) sqlite3_column_int64(st, 0);
        else
                r = sql_error(rc ? rc : SQLITE_ERROR);
        sqlite3_finalize(st);
        return r;
}

static int sqlite_counts(void *b, uint64_t *ret_users, uint64_t *ret_groups) {
        int r;

        if ((r = count(b, "SELECT COUNT(*) FROM users", ret_users)) < 0 ||
            (r = count(b, "SELECT COUNT(*) FROM groups", ret_groups)) < 0)
                return r;
        return 0;
}

static int user_get(struct sqlite_store *s, sqlite3_stmt *st, struct phi_user *ret) {
        int rc = sqlite3_step(st), r;

        if (rc == SQLITE_DONE)
                r = -ENOENT;
        else if (rc == SQLITE_ROW)
                r = user_from_row(st, ret);
        else
                r = sql_error(rc);
        (void) s;
        (void) sqlite3_reset(st);
        return r;
}

static int sqlite_user_get(void *b, const char *name, struct phi_user *ret) {
        sqlite3_stmt *st = stmt(b, S_USER_GET);

        if (!st || bind_text(st, 1, name) < 0)
                return -ENOMEM;
        return user_get(b, st, ret);
}

static int sqlite_user_get_by_uid(void *b, uint32_t uid, struct phi_user *ret) {
        sqlite3_stmt *st = stmt(b, S_USER_GET_UID);

        if (!st || sqlite3_bind_int64(st, 1, uid) != SQLITE_OK)
                return -ENOMEM;
        return user_get(b, st, ret);
}

static int sqlite_user_groups(void *b, const char *name, char ***ret, size_t *ret_n) {
        sqlite3_stmt *st = stmt(b, S_USER_GROUPS);
        char **v = NULL;
        size_t n = 0;
        int rc, r = 0;

        if (!st || bind_text(st, 1, name) < 0)
                return -ENOMEM;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                if ((r = strv_push(&v, &n, (const char *) sqlite3_column_text(st, 0))) < 0)
                        break;
        if (r == 0 && rc != SQLITE_DONE)
                r = sql_error(rc);
        (void) sqlite3_reset(st);
        if (r < 0) {
                phi_strv_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int sqlite_sync_state_get(void *b, struct phi_sync_state *ret) {
        struct sqlite_store *s = b;
        struct phi_sync_state state = { 0 };
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT cookie, last_success, last_full, generation, search FROM sync_state WHERE id = 1",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sql_error(rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const void *cookie = sqlite3_column_blob(st, 0);
                int len = sqlite3_column_bytes(st, 0);
                if (cookie && len > 0) {
                        state.cookie = malloc((size_t) len);
                        if (!state.cookie)
                                r = -ENOMEM;
                        else {
                                memcpy(state.cookie, cookie, (size_t) len);
                                state.cookie_len = (size_t) len;
                        }
                }
                state.last_success = (uint64_t) sqlite3_column_int64(st, 1);
                state.last_full = (uint64_t) sqlite3_column_int64(st, 2);
                state.generation = (uint64_t) sqlite3_column_int64(st, 3);
                state.search = col_dup(st, 4);
                if (!state.search)
                        r = -ENOMEM;
        } else
                r = rc == SQLITE_DONE ? -ENOENT : sql_error(rc);
        sqlite3_finalize(st);
        if (r < 0) {
                phi_sync_state_clear(&state);
                return r;
        }
        *ret = state;
        return 0;
}

static int sqlite_sync_state_put(void *b, const struct phi_sync_state *state) {
        struct sqlite_store *s = b;
        sqlite3_stmt *st = NULL;
        int rc, r;

        rc = sqlite3_prepare_v2(s->db,
                                "UPDATE sync_state SET cookie = ?1, last_success = ?2, last_full = ?3,"
                                " generation = ?4, search = ?5 WHERE id = 1",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sql_error(rc);
        if (state->cookie && state->cookie_len > 0)
                rc = sqlite3_bind_blob(st, 1, state->cookie, (int) state->cookie_len, SQLITE_STATIC);
        else
                rc = sqlite3_bind_null(st, 1);
        if (rc != SQLITE_OK ||
            sqlite3_bind_int64(st, 2, (sqlite3_int64) state->last_success) != SQLITE_OK ||
            sqlite3_bind_int64(st, 3, (sqlite3_int64) state->last_full) != SQLITE_OK ||
            sqlite3_bind_int64(st, 4, (sqlite3_int64) state->generation) != SQLITE_OK ||
            bind_text(st, 5, state->search) < 0) {
                sqlite3_finalize(st);
                return -ENOMEM;
        }
        r = step_done(st);
        sqlite3_finalize(st);
        return r;
}

/* ------------------------------------------------------------------ TOTP */

static int bind_i64(sqlite3_stmt *st, int i, uint64_t v) {
        return v > INT64_MAX || sqlite3_bind_int64(st, i, (sqlite3_int64) v) != SQLITE_OK ? -ERANGE : 0;
}

static int sqlite_token_get(void *b, const char *user, enum phi_token_state state, struct phi_token *ret) {
        struct sqlite_store *s = b;
        sqlite3_stmt *st = stmt(s, S_TOKEN_GET);
        struct phi_token t = { .state = state };
        const void *nonce, *sealed;
        int rc, r = 0, n_nonce, n_sealed;

        if (!st)
                return -ENOMEM;
        if (bind_text(st, 1, user) < 0 || sqlite3_bind_int(st, 2, (int) state) != SQLITE_OK)
                return -ENOMEM;
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                r = rc == SQLITE_DONE ? -ENOENT : sql_error(rc);
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
        *ret = t;
out:
        (void) sqlite3_reset(st);
        return r;
}

static int sqlite_token_put(void *b, const char *user, const struct phi_token *t) {
        struct sqlite_store *s = b;
        sqlite3_stmt *st = stmt(s, S_TOKEN_PUT);

        if (!st)
                return -ENOMEM;
        if (bind_text(st, 1, user) < 0 || sqlite3_bind_int(st, 2, (int) t->state) != SQLITE_OK ||
            bind_text(st, 3, phi_totp_algorithm_name(t->algorithm)) < 0 ||
            sqlite3_bind_int(st, 4, (int) t->digits) != SQLITE_OK ||
            sqlite3_bind_blob(st, 5, t->nonce, PHI_SEAL_NONCE_BYTES, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_blob(st, 6, t->sealed, (int) t->sealed_len, SQLITE_STATIC) != SQLITE_OK ||
            bind_i64(st, 7, t->watermark) < 0 || bind_i64(st, 8, t->created) < 0 ||
            bind_i64(st, 9, t->enrolled) < 0)
                return -ENOMEM;
        return step_done(st);
}

static int sqlite_token_advance(void *b, const char *user, enum phi_token_state state, uint64_t step) {
        struct sqlite_store *s = b;
        sqlite3_stmt *st = stmt(s, S_TOKEN_ADVANCE);
        int r;

        if (!st)
                return -ENOMEM;
        if (bind_text(st, 1, user) < 0 || sqlite3_bind_int(st, 2, (int) state) != SQLITE_OK ||
            bind_i64(st, 3, step) < 0)
                return -ENOMEM;
        r = step_done(st);
        if (r == 0 && sqlite3_changes(s->db) != 1)
                r = -ESTALE;
        return r;
}

static int sqlite_token_activate(void *b, const char *user, uint64_t now) {
        struct sqlite_store *s = b;
        struct phi_token pending;
        sqlite3_stmt *st;
        int r;

        if ((r = sqlite_token_get(b, user, PHI_TOKEN_PENDING, &pending)) < 0)
                return r;
        st = stmt(s, S_TOKEN_ACTIVATE_DROP);
        if (!st || bind_text(st, 1, user) < 0)
                return -ENOMEM;
        if ((r = step_done(st)) < 0)
                return r;
        st = stmt(s, S_TOKEN_ACTIVATE);
        if (!st || bind_text(st, 1, user) < 0 || bind_i64(st, 2, now) < 0)
                return -ENOMEM;
        return step_done(st);
}

static int exec_user(struct sqlite_store *s, int which, const char *user) {
        sqlite3_stmt *st = stmt(s, which);

        if (!st || bind_text(st, 1, user) < 0)
                return -ENOMEM;
        return step_done(st);
}

static int sqlite_token_delete(void *b, const char *user, bool *ret_found) {
        struct sqlite_store *s = b;
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

static int sqlite_ticket_put(void *b, const char *user, uint64_t expires, uint64_t now) {
        struct sqlite_store *s = b;
        sqlite3_stmt *st = stmt(s, S_TICKET_PUT);

        if (!st || bind_text(st, 1, user) < 0 || bind_i64(st, 2, expires) < 0 || bind_i64(st, 3, now) < 0)
                return -ENOMEM;
        return step_done(st);
}

static int sqlite_ticket_get(void *b, const char *user, uint64_t *ret_expires) {
        struct sqlite_store *s = b;
        sqlite3_stmt *st = stmt(s, S_TICKET_GET);
        int rc, r = 0;

        if (!st || bind_text(st, 1, user) < 0)
                return -ENOMEM;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret_expires = (uint64_t) sqlite3_column_int64(st, 0);
        else
                r = rc == SQLITE_DONE ? -ENOENT : sql_error(rc);
        (void) sqlite3_reset(st);
        return r;
}

static int sqlite_ticket_delete(void *b, const char *user) {
        return exec_user(b, S_TICKET_DELETE, user);
}

static int sqlite_failures_get(void *b, enum phi_failure_kind kind, const char *key, struct phi_failures *ret) {
        struct sqlite_store *s = b;
        sqlite3_stmt *st = stmt(s, S_FAILURES_GET);
        struct phi_failures f = { 0 };
        int rc, r = 0;

        if (!st || sqlite3_bind_int(st, 1, (int) kind) != SQLITE_OK || bind_text(st, 2, key) < 0)
                return -ENOMEM;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                f.count = (uint64_t) sqlite3_column_int64(st, 0);
                f.window_start = (uint64_t) sqlite3_column_int64(st, 1);
                f.locked_until = (uint64_t) sqlite3_column_int64(st, 2);
        } else if (rc != SQLITE_DONE)
                r = sql_error(rc);
        (void) sqlite3_reset(st);
        if (r == 0)
                *ret = f;
        return r;
}

static int sqlite_failures_put(void *b, enum phi_failure_kind kind, const char *key, const struct phi_failures *f) {
        struct sqlite_store *s = b;
        bool empty = f->count == 0 && f->locked_until == 0;
        sqlite3_stmt *st = stmt(s, empty ? S_FAILURES_DELETE : S_FAILURES_PUT);

        if (!st || sqlite3_bind_int(st, 1, (int) kind) != SQLITE_OK || bind_text(st, 2, key) < 0)
                return -ENOMEM;
        if (!empty && (bind_i64(st, 3, f->count) < 0 || bind_i64(st, 4, f->window_start) < 0 ||
                       bind_i64(st, 5, f->locked_until) < 0))
                return -ENOMEM;
        return step_done(st);
}

static int sqlite_failures_prune(void *b, uint64_t now, uint64_t window) {
        struct sqlite_store *s = b;
        sqlite3_stmt *st = stmt(s, S_FAILURES_PRUNE);

        if (!st || bind_i64(st, 1, now) < 0 || bind_i64(st, 2, window) < 0)
                return -ENOMEM;
        return step_done(st);
}

const struct phi_store_ops phi_store_sqlite_ops = {
        .name = "sqlite",
        .open = sqlite_open,
        .close = sqlite_close,
        .begin = sqlite_begin,
        .commit = sqlite_commit,
        .rollback = sqlite_rollback,
        .schema_version = sqlite_schema_version,
        .user_put = sqlite_user_put,
        .group_put = sqlite_group_put,
        .entry_delete = sqlite_entry_delete,
        .identities_clear = sqlite_identities_clear,
        .identities_load = sqlite_identities_load,
        .keys_load = sqlite_keys_load,
        .memberships_replace = sqlite_memberships_replace,
        .counts = sqlite_counts,
        .user_get = sqlite_user_get,
        .user_get_by_uid = sqlite_user_get_by_uid,
        .user_groups = sqlite_user_groups,
        .sync_state_get = sqlite_sync_state_get,
        .sync_state_put = sqlite_sync_state_put,
        .token_get = sqlite_token_get,
        .token_put = sqlite_token_put,
        .token_advance = sqlite_token_advance,
        .token_activate = sqlite_token_activate,
        .token_delete = sqlite_token_delete,
        .ticket_put = sqlite_ticket_put,
        .ticket_get = sqlite_ticket_get,
        .ticket_delete = sqlite_ticket_delete,
        .failures_get = sqlite_failures_get,
        .failures_put = sqlite_failures_put,
        .failures_prune = sqlite_failures_prune,
};

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The identity part of the store, in SQLite: users, groups, their members,
 * resolved memberships and the sync bookkeeping, in a file of its own beside
 * the shared store (store.h says why). Written by the directory thread only,
 * read by everyone; WAL mode, so readers never wait for its long refreshes. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "store_sqlite_db.h"

/* Append-only, like the shared store's. Version 1 is the identity tables as
 * the shared store's migrations 1 and 3 had made them, so that an old store's
 * rows move over unchanged (store_sqlite.c). */
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
          "  generation INTEGER NOT NULL DEFAULT 0, search TEXT NOT NULL DEFAULT '');"
          "INSERT INTO sync_state (id) VALUES (1);"
          /* One row once an old store's identities were copied here: the copy
           * is done (store_sqlite.c). */
          "CREATE TABLE moved_from_store (id INTEGER PRIMARY KEY CHECK (id = 1), moved INTEGER NOT NULL);" },
        /* Users gone in an accepted refresh, until their tokens are revoked. */
        { 2, "departed",
          "CREATE TABLE departed (key TEXT PRIMARY KEY, name TEXT NOT NULL, removed INTEGER NOT NULL) WITHOUT ROWID;" },
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
        S_USER_PRIMARY_GROUP,
        S_MEMBERSHIP_ADD,
        S_DEPARTED_ADD,
        S_DEPARTED_LIST,
        S_DEPARTED_DELETE,
        S_BEGIN,
        S_COMMIT,
        S_ROLLBACK,
        _S_MAX,
};

static const char *const statements[_S_MAX] = {
        [S_USER_PUT] = "INSERT INTO users (key, dn, name, uid, gid, gecos, home, shell, modified)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                       " ON CONFLICT (key) DO UPDATE SET dn = ?2, name = ?3, uid = ?4, gid = ?5,"
                       " gecos = ?6, home = ?7, shell = ?8, modified = ?9"
                       /* An unchanged entry is not rewritten: a full refresh
                        * of a directory that barely changed writes little. */
                       " WHERE dn IS NOT ?2 OR name IS NOT ?3 OR uid IS NOT ?4 OR gid IS NOT ?5"
                       " OR gecos IS NOT ?6 OR home IS NOT ?7 OR shell IS NOT ?8",
        [S_GROUP_PUT] = "INSERT INTO groups (key, dn, name, gid, modified) VALUES (?1, ?2, ?3, ?4, ?5)"
                        " ON CONFLICT (key) DO UPDATE SET dn = ?2, name = ?3, gid = ?4, modified = ?5",
        [S_MEMBERS_DEL] = "DELETE FROM group_members WHERE group_key = ?1",
        [S_MEMBER_ADD] = "INSERT OR IGNORE INTO group_members (group_key, kind, value) VALUES (?1, ?2, ?3)",
        [S_USER_DEL] = "DELETE FROM users WHERE key = ?1",
        [S_GROUP_DEL] = "DELETE FROM groups WHERE key = ?1",
        [S_USER_GET] = "SELECT key, dn, name, uid, gid, gecos, home, shell FROM users WHERE name = ?1",
        [S_USER_GET_UID] = "SELECT key, dn, name, uid, gid, gecos, home, shell FROM users WHERE uid = ?1",
        [S_USER_GROUPS] = "SELECT group_name FROM memberships WHERE user_name = ?1 ORDER BY group_name",
        [S_USER_PRIMARY_GROUP] = "SELECT g.name FROM users u JOIN groups g ON g.gid = u.gid WHERE u.name = ?1",
        [S_MEMBERSHIP_ADD] = "INSERT OR IGNORE INTO memberships (user_name, group_name) VALUES (?1, ?2)",
        [S_DEPARTED_ADD] = "INSERT OR REPLACE INTO departed (key, name, removed)"
                           " SELECT key, name, ?2 FROM users WHERE key = ?1",
        [S_DEPARTED_LIST] = "SELECT key, name, removed FROM departed ORDER BY removed, key",
        [S_DEPARTED_DELETE] = "DELETE FROM departed WHERE key = ?1",
        [S_BEGIN] = "BEGIN IMMEDIATE",
        [S_COMMIT] = "COMMIT",
        [S_ROLLBACK] = "ROLLBACK",
};

int phi_sqlite_identities_migrate(struct phi_sqlite_db *d) {
        return phi_sqlite_migrate(d, migrations, PHI_ELEMENTSOF(migrations), UINT32_MAX);
}

static void sqlite_close(void *b) {
        struct phi_sqlite_db *s = b;

        if (!s)
                return;
        phi_sqlite_close(s);
        free(s);
}

static int sqlite_open(const char *location, bool read_only, void **ret) {
        struct phi_sqlite_db *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        if ((r = phi_sqlite_open(location, read_only, statements, _S_MAX, s)) < 0) {
                free(s);
                return r;
        }
        /* A reader finds the file made and migrated by the shared part's open. */
        if (!read_only && (r = phi_sqlite_identities_migrate(s)) < 0) {
                sqlite_close(s);
                return r;
        }
        *ret = s;
        return 0;
}

static int run_stmt(struct phi_sqlite_db *s, int which) {
        sqlite3_stmt *st = phi_sqlite_stmt(s, (size_t) which);

        return st ? phi_sqlite_step_done(st) : -ENOMEM;
}

static int sqlite_begin(void *b) { return run_stmt(b, S_BEGIN); }
static int sqlite_commit(void *b) { return run_stmt(b, S_COMMIT); }
static void sqlite_rollback(void *b) { (void) run_stmt(b, S_ROLLBACK); }
static int sqlite_schema_version(void *b, unsigned *ret) { return phi_sqlite_version(b, ret); }

static int sqlite_user_put(void *b, const struct phi_user *u) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_USER_PUT);

        if (!st)
                return -ENOMEM;
        if (phi_sqlite_bind_text(st, 1, u->key) < 0 || phi_sqlite_bind_text(st, 2, u->dn) < 0 ||
            phi_sqlite_bind_text(st, 3, u->name) < 0 || sqlite3_bind_int64(st, 4, u->uid) != SQLITE_OK ||
            sqlite3_bind_int64(st, 5, u->gid) != SQLITE_OK || phi_sqlite_bind_text(st, 6, u->gecos) < 0 ||
            phi_sqlite_bind_text(st, 7, u->home) < 0 || phi_sqlite_bind_text(st, 8, u->shell) < 0 ||
            sqlite3_bind_int64(st, 9, (sqlite3_int64) time(NULL)) != SQLITE_OK)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int sqlite_group_put(void *b, const struct phi_group *g) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = phi_sqlite_stmt(s, S_GROUP_PUT);
        int r;

        if (!st)
                return -ENOMEM;
        if (phi_sqlite_bind_text(st, 1, g->key) < 0 || phi_sqlite_bind_text(st, 2, g->dn) < 0 ||
            phi_sqlite_bind_text(st, 3, g->name) < 0 || sqlite3_bind_int64(st, 4, g->gid) != SQLITE_OK ||
            sqlite3_bind_int64(st, 5, (sqlite3_int64) time(NULL)) != SQLITE_OK)
                return -ENOMEM;
        if ((r = phi_sqlite_step_done(st)) < 0)
                return r;
        st = phi_sqlite_stmt(s, S_MEMBERS_DEL);
        if (!st || phi_sqlite_bind_text(st, 1, g->key) < 0)
                return -ENOMEM;
        if ((r = phi_sqlite_step_done(st)) < 0)
                return r;
        for (int kind = 1; kind <= 2; kind++) {
                char **v = kind == 1 ? g->member_uids : g->member_dns;
                size_t n = kind == 1 ? g->n_member_uids : g->n_member_dns;
                for (size_t i = 0; i < n; i++) {
                        st = phi_sqlite_stmt(s, S_MEMBER_ADD);
                        if (!st || phi_sqlite_bind_text(st, 1, g->key) < 0 ||
                            sqlite3_bind_int(st, 2, kind) != SQLITE_OK || phi_sqlite_bind_text(st, 3, v[i]) < 0)
                                return -ENOMEM;
                        if ((r = phi_sqlite_step_done(st)) < 0)
                                return r;
                }
        }
        return 0;
}

static int sqlite_entry_delete(void *b, const char *key, bool *ret_found) {
        struct phi_sqlite_db *s = b;
        bool found = false;
        int r;

        for (int which = S_USER_DEL; which <= S_GROUP_DEL; which++) {
                sqlite3_stmt *st = phi_sqlite_stmt(s, which);
                if (!st || phi_sqlite_bind_text(st, 1, key) < 0)
                        return -ENOMEM;
                if ((r = phi_sqlite_step_done(st)) < 0)
                        return r;
                if (sqlite3_changes(s->db) > 0)
                        found = true;
        }
        *ret_found = found;
        return 0;
}

static int sqlite_identities_clear(void *b) {
        return phi_sqlite_exec(b, "DELETE FROM group_members; DELETE FROM groups; DELETE FROM users;");
}

static int user_from_row(sqlite3_stmt *st, struct phi_user *u) {
        *u = (struct phi_user){
                .key = phi_sqlite_col_dup(st, 0), .dn = phi_sqlite_col_dup(st, 1), .name = phi_sqlite_col_dup(st, 2),
                .uid = (uint32_t) sqlite3_column_int64(st, 3),
                .gid = (uint32_t) sqlite3_column_int64(st, 4),
                .gecos = phi_sqlite_col_dup(st, 5), .home = phi_sqlite_col_dup(st, 6), .shell = phi_sqlite_col_dup(st, 7),
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
        struct phi_sqlite_db *s = b;
        struct phi_identities ids = { 0 };
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db, "SELECT key, dn, name, uid, gid, gecos, home, shell FROM users",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return phi_sqlite_error(rc);
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
                r = phi_sqlite_error(rc);
        sqlite3_finalize(st);
        st = NULL;
        if (r < 0)
                goto fail;

        /* Groups come ordered by key and their members joined in the same order, so
         * one pass attaches members without a lookup per row. */
        rc = sqlite3_prepare_v2(s->db, "SELECT key, dn, name, gid FROM groups ORDER BY key", -1,
                                &st, NULL);
        if (rc != SQLITE_OK) {
                r = phi_sqlite_error(rc);
                goto fail;
        }
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct phi_group g = {
                        .key = phi_sqlite_col_dup(st, 0), .dn = phi_sqlite_col_dup(st, 1), .name = phi_sqlite_col_dup(st, 2),
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
                r = phi_sqlite_error(rc);
        sqlite3_finalize(st);
        st = NULL;
        if (r < 0)
                goto fail;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT group_key, kind, value FROM group_members ORDER BY group_key",
                                -1, &st, NULL);
        if (rc != SQLITE_OK) {
                r = phi_sqlite_error(rc);
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
                r = phi_sqlite_error(rc);
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
        struct phi_sqlite_db *s = b;
        char **v = NULL;
        size_t n = 0, n_users = 0;
        int rc, r = 0;

        for (size_t q = 0; q < PHI_ELEMENTSOF(queries) && r == 0; q++) {
                sqlite3_stmt *st = NULL;
                rc = sqlite3_prepare_v2(s->db, queries[q], -1, &st, NULL);
                if (rc != SQLITE_OK) {
                        r = phi_sqlite_error(rc);
                        break;
                }
                r = phi_sqlite_collect_strv(st, &v, &n);
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
        struct phi_sqlite_db *s = b;
        int r;

        if ((r = phi_sqlite_exec(s, "DELETE FROM memberships")) < 0)
                return r;
        for (size_t g = 0; g < res->n_groups && g < ids->n_groups; g++)
                for (size_t k = 0; k < res->groups[g].n; k++) {
                        sqlite3_stmt *st = phi_sqlite_stmt(s, S_MEMBERSHIP_ADD);
                        if (!st || phi_sqlite_bind_text(st, 1, res->groups[g].names[k]) < 0 ||
                            phi_sqlite_bind_text(st, 2, ids->groups[g].name) < 0)
                                return -ENOMEM;
                        if ((r = phi_sqlite_step_done(st)) < 0)
                                return r;
                }
        return 0;
}

static int count(struct phi_sqlite_db *s, const char *sql, uint64_t *ret) {
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return phi_sqlite_error(rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (uint64_t) sqlite3_column_int64(st, 0);
        else
                r = phi_sqlite_error(rc ? rc : SQLITE_ERROR);
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

static int user_get(struct phi_sqlite_db *s, sqlite3_stmt *st, struct phi_user *ret) {
        int rc = sqlite3_step(st), r;

        if (rc == SQLITE_DONE)
                r = -ENOENT;
        else if (rc == SQLITE_ROW)
                r = user_from_row(st, ret);
        else
                r = phi_sqlite_error(rc);
        (void) s;
        (void) sqlite3_reset(st);
        return r;
}

static int sqlite_user_get(void *b, const char *name, struct phi_user *ret) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_USER_GET);

        if (!st || phi_sqlite_bind_text(st, 1, name) < 0)
                return -ENOMEM;
        return user_get(b, st, ret);
}

static int sqlite_user_get_by_uid(void *b, uint32_t uid, struct phi_user *ret) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_USER_GET_UID);

        if (!st || sqlite3_bind_int64(st, 1, uid) != SQLITE_OK)
                return -ENOMEM;
        return user_get(b, st, ret);
}

static int sqlite_user_groups(void *b, const char *name, char ***ret, size_t *ret_n) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_USER_GROUPS);
        char **v = NULL;
        size_t n = 0;
        int r;

        if (!st || phi_sqlite_bind_text(st, 1, name) < 0)
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

static int sqlite_user_primary_group(void *b, const char *name, char **ret) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_USER_PRIMARY_GROUP);
        char **v = NULL;
        size_t n = 0;
        int r;

        if (!st || phi_sqlite_bind_text(st, 1, name) < 0)
                return -ENOMEM;
        r = phi_sqlite_collect_strv(st, &v, &n);
        (void) sqlite3_reset(st);
        if (r == 0 && n == 0)
                r = -ENOENT;
        if (r == 0) {
                /* gid is UNIQUE among groups: one row at most. */
                *ret = v[0];
                v[0] = NULL;
        }
        phi_strv_free(v, n);
        return r;
}

static int sqlite_sync_state_get(void *b, struct phi_sync_state *ret) {
        struct phi_sqlite_db *s = b;
        struct phi_sync_state state = { 0 };
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT cookie, last_success, last_full, generation, search FROM sync_state WHERE id = 1",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return phi_sqlite_error(rc);
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
                state.search = phi_sqlite_col_dup(st, 4);
                if (!state.search)
                        r = -ENOMEM;
        } else
                r = rc == SQLITE_DONE ? -ENOENT : phi_sqlite_error(rc);
        sqlite3_finalize(st);
        if (r < 0) {
                phi_sync_state_clear(&state);
                return r;
        }
        *ret = state;
        return 0;
}

static int sqlite_sync_state_put(void *b, const struct phi_sync_state *state) {
        struct phi_sqlite_db *s = b;
        sqlite3_stmt *st = NULL;
        int rc, r;

        rc = sqlite3_prepare_v2(s->db,
                                "UPDATE sync_state SET cookie = ?1, last_success = ?2, last_full = ?3,"
                                " generation = ?4, search = ?5 WHERE id = 1",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return phi_sqlite_error(rc);
        if (state->cookie && state->cookie_len > 0)
                rc = sqlite3_bind_blob(st, 1, state->cookie, (int) state->cookie_len, SQLITE_STATIC);
        else
                rc = sqlite3_bind_null(st, 1);
        if (rc != SQLITE_OK ||
            sqlite3_bind_int64(st, 2, (sqlite3_int64) state->last_success) != SQLITE_OK ||
            sqlite3_bind_int64(st, 3, (sqlite3_int64) state->last_full) != SQLITE_OK ||
            sqlite3_bind_int64(st, 4, (sqlite3_int64) state->generation) != SQLITE_OK ||
            phi_sqlite_bind_text(st, 5, state->search) < 0) {
                sqlite3_finalize(st);
                return -ENOMEM;
        }
        r = phi_sqlite_step_done(st);
        sqlite3_finalize(st);
        return r;
}

/* Only a user's key records anything: a group's finds no row. */
static int sqlite_departed_add(void *b, const char *key, uint64_t now) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_DEPARTED_ADD);

        if (!st || phi_sqlite_bind_text(st, 1, key) < 0 || phi_sqlite_bind_i64(st, 2, now) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

static int sqlite_departed_list(void *b, struct phi_departed **ret, size_t *ret_n) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_DEPARTED_LIST);
        struct phi_departed *v = NULL;
        size_t n = 0;
        int rc, r = 0;

        if (!st)
                return -ENOMEM;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct phi_departed *nv = reallocarray(v, n + 1, sizeof(*v));
                if (!nv) {
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                v[n] = (struct phi_departed){ .key = phi_sqlite_col_dup(st, 0), .name = phi_sqlite_col_dup(st, 1),
                                              .removed = (uint64_t) sqlite3_column_int64(st, 2) };
                n++;
                if (!v[n - 1].key || !v[n - 1].name) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = phi_sqlite_error(rc);
        (void) sqlite3_reset(st);
        if (r < 0) {
                phi_departed_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int sqlite_departed_delete(void *b, const char *key) {
        sqlite3_stmt *st = phi_sqlite_stmt(b, S_DEPARTED_DELETE);

        if (!st || phi_sqlite_bind_text(st, 1, key) < 0)
                return -ENOMEM;
        return phi_sqlite_step_done(st);
}

const struct phi_identity_ops phi_identity_sqlite_ops = {
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
        .user_primary_group = sqlite_user_primary_group,
        .sync_state_get = sqlite_sync_state_get,
        .sync_state_put = sqlite_sync_state_put,
        .departed_add = sqlite_departed_add,
        .departed_list = sqlite_departed_list,
        .departed_delete = sqlite_departed_delete,
};

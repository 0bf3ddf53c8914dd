/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One SQLite file of the store: open, migrate, statements. See store_sqlite_db.h. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "phi/fs.h"
#include "store_sqlite_db.h"

int phi_sqlite_error(int rc) {
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

int phi_sqlite_exec(struct phi_sqlite_db *d, const char *sql) {
        return phi_sqlite_error(sqlite3_exec(d->db, sql, NULL, NULL, NULL));
}

sqlite3_stmt *phi_sqlite_stmt(struct phi_sqlite_db *d, size_t which) {
        sqlite3_stmt *st;

        if (which >= d->n_stmt)
                return NULL;
        st = d->stmt[which];
        if (!st) {
                if (sqlite3_prepare_v3(d->db, d->sql[which], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
                    SQLITE_OK)
                        return NULL;
                d->stmt[which] = st;
        }
        (void) sqlite3_reset(st);
        (void) sqlite3_clear_bindings(st);
        return st;
}

int phi_sqlite_step_done(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        int r = rc == SQLITE_DONE ? 0 : phi_sqlite_error(rc ? rc : SQLITE_ERROR);

        (void) sqlite3_reset(st);
        return r;
}

int phi_sqlite_bind_text(sqlite3_stmt *st, int i, const char *v) {
        return sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC) == SQLITE_OK ? 0 : -ENOMEM;
}

int phi_sqlite_bind_i64(sqlite3_stmt *st, int i, uint64_t v) {
        return v > INT64_MAX || sqlite3_bind_int64(st, i, (sqlite3_int64) v) != SQLITE_OK ? -ERANGE : 0;
}

char *phi_sqlite_col_dup(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);
        return strdup(t ? (const char *) t : "");
}

int phi_sqlite_collect_strv(sqlite3_stmt *st, char ***v, size_t *n) {
        int rc;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                char **nv = reallocarray(*v, *n + 1, sizeof(char *));
                if (!nv)
                        return -ENOMEM;
                *v = nv;
                if (!(nv[*n] = phi_sqlite_col_dup(st, 0)))
                        return -ENOMEM;
                (*n)++;
        }
        return rc == SQLITE_DONE ? 0 : phi_sqlite_error(rc);
}

int phi_sqlite_version(struct phi_sqlite_db *d, unsigned *ret) {
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(d->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return phi_sqlite_error(rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (unsigned) sqlite3_column_int64(st, 0);
        else
                r = phi_sqlite_error(rc);
        sqlite3_finalize(st);
        return r;
}

int phi_sqlite_migrate(struct phi_sqlite_db *d, const struct phi_sqlite_migration *m, size_t n, unsigned upto) {
        unsigned have = 0;
        int r;

        if ((r = phi_sqlite_exec(d, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL)")) < 0 ||
            (r = phi_sqlite_version(d, &have)) < 0)
                return r;
        if (n == 0 || have > m[n - 1].version)
                return -EPROTONOSUPPORT;
        for (size_t i = 0; i < n; i++) {
                char record[256];
                if (m[i].version <= have || m[i].version > upto)
                        continue;
                snprintf(record, sizeof(record),
                         "INSERT INTO schema_migrations (version, name, applied) VALUES (%u, '%s', %lld)",
                         m[i].version, m[i].name, (long long) time(NULL));
                if ((r = phi_sqlite_exec(d, "BEGIN IMMEDIATE")) < 0)
                        return r;
                /* Another connection of this process may have applied it
                 * between our read of the version and the lock. */
                if ((r = phi_sqlite_version(d, &have)) < 0 || m[i].version <= have) {
                        (void) phi_sqlite_exec(d, "ROLLBACK");
                        if (r < 0)
                                return r;
                        continue;
                }
                if ((r = phi_sqlite_exec(d, m[i].sql)) < 0 || (r = phi_sqlite_exec(d, record)) < 0 ||
                    (r = phi_sqlite_exec(d, "COMMIT")) < 0) {
                        (void) phi_sqlite_exec(d, "ROLLBACK");
                        return r;
                }
        }
        return 0;
}

void phi_sqlite_close(struct phi_sqlite_db *d) {
        if (!d)
                return;
        if (d->stmt)
                for (size_t i = 0; i < d->n_stmt; i++)
                        sqlite3_finalize(d->stmt[i]);
        free(d->stmt);
        sqlite3_close_v2(d->db);
        *d = (struct phi_sqlite_db){ 0 };
}

int phi_sqlite_open(const char *location, bool read_only, const char *const *statements, size_t n,
                    struct phi_sqlite_db *ret) {
        struct phi_sqlite_db d = { .sql = statements, .n_stmt = n };
        int rc, r;

        d.stmt = calloc(n ? n : 1, sizeof(sqlite3_stmt *));
        if (!d.stmt)
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
        if (!read_only && *location && strcmp(location, ":memory:") != 0) {
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
        rc = sqlite3_open_v2(location, &d.db,
                             (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                                     SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOFOLLOW,
                             NULL);
        if (rc != SQLITE_OK) {
                r = phi_sqlite_error(rc);
                goto fail;
        }
        (void) sqlite3_busy_timeout(d.db, 10000);
        if (!read_only && ((r = phi_sqlite_exec(&d, "PRAGMA journal_mode=WAL")) < 0 ||
                           (r = phi_sqlite_exec(&d, "PRAGMA synchronous=FULL")) < 0))
                goto fail;
        if ((r = phi_sqlite_exec(&d, "PRAGMA foreign_keys=ON")) < 0)
                goto fail;
        *ret = d;
        return 0;
fail:
        phi_sqlite_close(&d);
        return r;
}

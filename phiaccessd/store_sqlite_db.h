/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the two SQLite files of the store have in common: opening a database
 * file safely (0600, its directory synced when new, WAL, synchronous=FULL),
 * numbered migrations, a cache of prepared statements, and errno mapping.
 * Used by store_sqlite.c (the shared part) and store_sqlite_identities.c
 * (the directory's identities); nothing outside the store sees it. */

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phi/macro.h"

struct phi_sqlite_migration {
        unsigned version;
        const char *name;
        const char *sql;
};

struct phi_sqlite_db {
        sqlite3 *db;
        const char *const *sql;     /* the statements, by index */
        sqlite3_stmt **stmt;        /* prepared on first use */
        size_t n_stmt;
};

int phi_sqlite_error(int rc);
/* Opens location read-write (creating it 0600 and syncing its directory when
 * it is new) in WAL mode, or read-only; statements[n] are prepared lazily. */
int phi_sqlite_open(const char *location, bool read_only, const char *const *statements, size_t n,
                    struct phi_sqlite_db *ret) _phi_warn_unused_;
void phi_sqlite_close(struct phi_sqlite_db *d);
/* Applies migrations[] with a version in (current, upto], each in its own
 * transaction recorded in schema_migrations. -EPROTONOSUPPORT when the file is
 * newer than every migration this code knows. */
int phi_sqlite_migrate(struct phi_sqlite_db *d, const struct phi_sqlite_migration *m, size_t n,
                       unsigned upto) _phi_warn_unused_;
int phi_sqlite_version(struct phi_sqlite_db *d, unsigned *ret) _phi_warn_unused_;
int phi_sqlite_exec(struct phi_sqlite_db *d, const char *sql);
/* The statement, reset and unbound; NULL when it cannot be prepared. */
sqlite3_stmt *phi_sqlite_stmt(struct phi_sqlite_db *d, size_t which);
/* Steps a statement that returns no row, and resets it. */
int phi_sqlite_step_done(sqlite3_stmt *st) _phi_warn_unused_;
int phi_sqlite_bind_text(sqlite3_stmt *st, int i, const char *v) _phi_warn_unused_;
int phi_sqlite_bind_i64(sqlite3_stmt *st, int i, uint64_t v) _phi_warn_unused_;
/* A copy of a text column ("" for NULL); NULL on ENOMEM. */
char *phi_sqlite_col_dup(sqlite3_stmt *st, int i);
/* Steps st to its end, appending a copy of each row's first column to *v
 * (*n entries). On failure the entries appended so far stay for the caller
 * to free with phi_strv_free(). st is not reset. */
int phi_sqlite_collect_strv(sqlite3_stmt *st, char ***v, size_t *n) _phi_warn_unused_;

/* The identity file's migrations (store_sqlite_identities.c); the shared
 * part's open runs them before it moves an old store's identities there. */
int phi_sqlite_identities_migrate(struct phi_sqlite_db *d) _phi_warn_unused_;

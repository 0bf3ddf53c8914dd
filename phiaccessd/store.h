/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The daemon's store, behind a narrow interface: the rest of phiaccessd calls
 * phi_store_*() and never sees SQL, so a PostgreSQL backend for fleets (approval
 * records shared across hosts) can be added as another ops table.
 *
 * Two parts, in two places, each with its own ops table and transactions:
 *   - the shared part (struct phi_store_ops): TOTP tokens, tickets, failure
 *     counters, and later requests, grants and the audit log: what a fleet
 *     shares, so a backend of its own (SQLite now, PostgreSQL later), at the
 *     configured location; written by the verifier (phi_store_begin);
 *   - the identity part (struct phi_identity_ops): users, groups, members,
 *     resolved memberships and the sync bookkeeping: what this host reads from
 *     its directory, always a local SQLite file beside the store
 *     (phi_store_identities_path), written by the directory thread alone
 *     (phi_store_identities_begin).
 * They never share a write lock: a directory refresh that rewrites every
 * identity in one long transaction holds the identity file's lock only, and a
 * login's durable commit (the replay watermark) goes on meanwhile. No handle
 * attaches one file to the other (SQLite's BEGIN IMMEDIATE would lock both).
 *
 * Threads: a phi_store handle belongs to one thread. The socket thread, the
 * verifier and the LDAP thread each open their own handle; the backend must
 * let one writer and many readers work at once (SQLite: WAL mode).
 *
 * Schema: versioned by numbered migrations per part, applied in order at open,
 * each in its own transaction and recorded in the part's schema_migrations.
 * Later features append migrations; a database newer than the code is refused
 * (-EPROTONOSUPPORT). */

#include <stdint.h>

#include "audit_rows.h"
#include "elevation.h"
#include "identity.h"
#include "sessions.h"
#include "token.h"
#include "phi/macro.h"

typedef struct phi_store phi_store;

/* The change feed: what one daemon committed that the others sharing the
 * store must react to (see phi_store_change_add). */
enum phi_change_kind {
        PHI_CHANGE_ELEVATION = 1,   /* a request's state changed: subject is its id */
        PHI_CHANGE_TOKEN = 2,       /* a user's token or ticket changed: subject is the user */
        PHI_CHANGE_SESSION = 3,     /* a session was closed: subject is its id */
};
#define PHI_CHANGE_SUBJECT_MAX 255

struct phi_change {
        uint64_t seq;
        enum phi_change_kind kind;
        char subject[PHI_CHANGE_SUBJECT_MAX + 1];
        char host[256];             /* the host whose daemon wrote it */
        uint64_t created;           /* Unix seconds */
};

/* Sync bookkeeping kept across restarts. */
struct phi_sync_state {
        uint8_t *cookie;            /* RFC 4533 cookie; NULL when none */
        size_t cookie_len;
        uint64_t last_success;      /* Unix seconds of the last completed refresh or change */
        uint64_t last_full;         /* Unix seconds of the last full refresh */
        uint64_t generation;        /* snapshot generation last published */
        char *search;               /* the search the cookie belongs to (see ldap_sync.c) */
};
void phi_sync_state_clear(struct phi_sync_state *s);

/* A user who left the directory in an accepted refresh, waiting for the
 * revocation of whatever TOTP state its identity had (ldap_sync.c). */
struct phi_departed {
        char *key;                  /* the identity */
        char *name;                 /* the name it had */
        uint64_t removed;           /* Unix seconds */
};
void phi_departed_free(struct phi_departed *d, size_t n);

/* What a store holds, counted (phictl backup's reply, phiaccessd --restore). */
struct phi_store_counts {
        unsigned schema_version;
        uint64_t tokens_active;
        uint64_t tokens_pending;
        uint64_t tickets;
        uint64_t failure_counters;
};

/* Where and how the shared part is opened: phi_store_open_params(). */
struct phi_store_params {
        const char *backend;            /* "sqlite" or "postgresql" */
        /* SQLite: the store's file. PostgreSQL: a libpq connection string or
         * URI (it may hold a password: never logged). */
        const char *location;
        /* The identity file (a local SQLite file whatever the backend); NULL:
         * phi_store_identities_path(location), which SQLite uses. */
        const char *identities;
        /* PostgreSQL: SET synchronous_commit on each connection (on,
         * remote_write, remote_apply or local); NULL: on. */
        const char *synchronous_commit;
};

/* The shared part. */
struct phi_store_ops {
        const char *name;
        /* Opens, creating and migrating as needed. The SQLite backend also moves
         * the identities of a store made before they had a file of their own
         * into identities_location, once (store_sqlite.c). */
        int (*open)(const struct phi_store_params *p, const char *identities_location, void **ret);
        void (*close)(void *b);
        int (*begin)(void *b);
        int (*commit)(void *b);
        void (*rollback)(void *b);
        int (*schema_version)(void *b, unsigned *ret);

        /* TOTP (token.h) */
        int (*token_get)(void *b, const char *user, enum phi_token_state state, struct phi_token *ret);
        int (*token_put)(void *b, const char *user, const struct phi_token *t);
        int (*token_advance)(void *b, const char *user, enum phi_token_state state, uint64_t step);
        int (*token_activate)(void *b, const char *user, uint64_t now);
        int (*token_delete)(void *b, const char *user, bool *ret_found);
        int (*ticket_put)(void *b, const char *user, const struct phi_ticket *t);
        int (*ticket_get)(void *b, const char *user, struct phi_ticket *ret);
        int (*ticket_delete)(void *b, const char *user);
        int (*identity_revoke)(void *b, const char *identity, bool *ret_token, bool *ret_ticket);
        int (*legacy_users)(void *b, char ***ret, size_t *ret_n);
        int (*failures_get)(void *b, enum phi_failure_kind kind, const char *key, struct phi_failures *ret);
        int (*failures_put)(void *b, enum phi_failure_kind kind, const char *key, const struct phi_failures *f);
        int (*failures_prune)(void *b, uint64_t now, uint64_t window);

        /* Open sessions (sessions.h) */
        int (*session_open)(void *b, const struct phi_session *s);
        int (*session_close)(void *b, const char *id, const char *user, struct phi_session *ret_old);
        int (*session_list)(void *b, const char *host, const char *after, size_t max, struct phi_session **ret,
                            size_t *ret_n);

        /* Elevation requests and their decisions (elevation.h) */
        int (*elev_put)(void *b, const struct phi_elev_request *r);
        int (*elev_update)(void *b, const struct phi_elev_request *r);
        int (*elev_get)(void *b, const char *id, struct phi_elev_request *ret);
        int (*elev_decision_add)(void *b, const char *id, const char *approver, bool approve, const char *reason,
                                 uint64_t when);
        int (*elev_list)(void *b, unsigned state_mask, const char *requester, const char *after, size_t max,
                         struct phi_elev_request **ret, size_t *ret_n);
        /* The audit log (audit_log.h) */
        int (*audit_append)(void *b, const struct phi_audit_row *row);
        int (*audit_tree_get)(void *b, char *hex, size_t cap);
        int (*audit_tree_put)(void *b, const char *hex);
        int (*audit_leaf_hash)(void *b, uint64_t seq, char hex[65]);
        int (*audit_rows)(void *b, const struct phi_audit_filter *f, uint64_t from, size_t max,
                          struct phi_audit_row **ret, size_t *ret_n);
        int (*audit_checkpoint_put)(void *b, uint64_t size, const char *note, uint64_t created);
        int (*audit_checkpoints)(void *b, uint64_t from_size, size_t max, struct phi_audit_checkpoint_row **ret,
                                 size_t *ret_n);

        /* Several daemons on one store (phiaccessd(8) FLEET) */
        int (*audit_tree_lock)(void *b, char *hex, size_t cap);
        int (*audit_checkpoint_last)(void *b, uint64_t *ret_size, uint64_t *ret_created);
        int (*elev_transition)(void *b, const struct phi_elev_request *r, const struct phi_elev_request *old);
        int (*change_add)(void *b, enum phi_change_kind kind, const char *subject, const char *host,
                          uint64_t created);
        int (*changes_after)(void *b, uint64_t after, size_t max, struct phi_change **ret, size_t *ret_n);
        int (*changes_max)(void *b, uint64_t *ret);
        int (*changes_prune)(void *b, uint64_t before);
        /* Optional (NULL: none); see phi_store_changes_wake_fd. */
        int (*changes_wake_fd)(void *b);
        void (*changes_wake_ack)(void *b);

        /* Backup and restore (backup.c) */
        int (*counts)(void *b, struct phi_store_counts *ret);
        /* A consistent copy of the store, as of one moment, written to dest
         * (an empty file) while other handles go on committing; ret counts
         * the copy itself. */
        int (*backup)(void *b, const char *dest, struct phi_store_counts *ret);
        int (*tokens_raise_floor)(void *b, uint64_t step, uint64_t *ret_raised);
        int (*tickets_clear)(void *b, uint64_t *ret_cleared);

        /* For phictl status: where the shared part is (never a password) and
         * whether it answers now. */
        int (*probe)(void *b, char *where, size_t where_len, bool *ret_reachable);
};

/* The identity part: per host, whatever the shared backend is. */
struct phi_identity_ops {
        const char *name;
        /* read_only: a connection that can never take the write lock. */
        int (*open)(const char *location, bool read_only, void **ret);
        void (*close)(void *b);
        int (*begin)(void *b);
        int (*commit)(void *b);
        void (*rollback)(void *b);
        int (*schema_version)(void *b, unsigned *ret);

        int (*user_put)(void *b, const struct phi_user *u);
        int (*group_put)(void *b, const struct phi_group *g);
        int (*entry_delete)(void *b, const char *key, bool *ret_found);
        int (*identities_clear)(void *b);
        int (*identities_load)(void *b, struct phi_identities *ret);
        int (*keys_load)(void *b, char ***ret, size_t *ret_n, size_t *ret_n_users);
        int (*memberships_replace)(void *b, const struct phi_identities *ids,
                                   const struct phi_resolved *res);
        int (*counts)(void *b, uint64_t *ret_users, uint64_t *ret_groups);

        int (*user_get)(void *b, const char *name, struct phi_user *ret);
        int (*user_get_by_uid)(void *b, uint32_t uid, struct phi_user *ret);
        int (*user_groups)(void *b, const char *name, char ***ret, size_t *ret_n);

        int (*sync_state_get)(void *b, struct phi_sync_state *ret);
        int (*sync_state_put)(void *b, const struct phi_sync_state *s);

        int (*departed_add)(void *b, const char *key, uint64_t now);
        int (*departed_list)(void *b, struct phi_departed **ret, size_t *ret_n);
        int (*departed_delete)(void *b, const char *key);
};

extern const struct phi_store_ops phi_store_sqlite_ops;
extern const struct phi_store_ops phi_store_pg_ops;
extern const struct phi_identity_ops phi_identity_sqlite_ops;

/* How a handle uses the identity part. */
enum phi_store_identities {
        PHI_IDENTITIES_NONE,        /* not opened: identity calls fail with -EBADF */
        PHI_IDENTITIES_READ,        /* read-only connection (the verifier, the socket thread) */
        PHI_IDENTITIES_WRITE,       /* the directory thread */
};

/* Opens (creating and migrating as needed) the store at location with the named
 * backend ("sqlite") for the shared part, and its identity file
 * (phi_store_identities_path) as asked. */
int phi_store_open(const char *backend, const char *location, enum phi_store_identities identities,
                   phi_store **ret) _phi_warn_unused_ _phi_nonnull_;
/* The same with every setting: the backend named in p (-EOPNOTSUPP for one
 * this build lacks), p->identities for the identity file. */
int phi_store_open_params(const struct phi_store_params *p, enum phi_store_identities identities,
                          phi_store **ret) _phi_warn_unused_ _phi_nonnull_;
struct phi_config;
/* The store a configuration names ([store] backend, path, uri,
 * synchronous_commit): what every handle of the daemon opens. */
int phi_store_open_config(const struct phi_config *c, enum phi_store_identities identities, phi_store **ret)
        _phi_warn_unused_ _phi_nonnull_;
/* The backend's name ("sqlite", "postgresql"); where it is, without any
 * password, and whether it answers (a round trip for PostgreSQL). */
const char *phi_store_backend_name(const phi_store *s) _phi_nonnull_;
int phi_store_probe(phi_store *s, char *where, size_t where_len, bool *ret_reachable) _phi_warn_unused_
        _phi_nonnull_;
/* Where the identities of the store at location live: beside it, the name with
 * "-identities" before a ".db" suffix (phi.db -> phi-identities.db), else
 * appended. The same location for ":memory:" and "". Free with free(). */
int phi_store_identities_path(const char *location, char **ret) _phi_warn_unused_ _phi_nonnull_;
void phi_store_free(phi_store *s);
PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(phi_store *, phi_store_free);
#define _cleanup_store_ _cleanup_(phi_store_freep)

int phi_store_begin(phi_store *s) _phi_warn_unused_ _phi_nonnull_;
int phi_store_commit(phi_store *s) _phi_warn_unused_ _phi_nonnull_;
void phi_store_rollback(phi_store *s) _phi_nonnull_;
int phi_store_schema_version(phi_store *s, unsigned *ret) _phi_warn_unused_ _phi_nonnull_;

/* Transactions of the identity part (the directory thread's), apart from the
 * shared part's above: one never waits for the other. */
int phi_store_identities_begin(phi_store *s) _phi_warn_unused_ _phi_nonnull_;
int phi_store_identities_commit(phi_store *s) _phi_warn_unused_ _phi_nonnull_;
void phi_store_identities_rollback(phi_store *s) _phi_nonnull_;
int phi_store_identities_schema_version(phi_store *s, unsigned *ret) _phi_warn_unused_ _phi_nonnull_;

/* Inserts or replaces by key. -EEXIST when the name or id belongs to another key. */
int phi_store_user_put(phi_store *s, const struct phi_user *u) _phi_warn_unused_ _phi_nonnull_;
int phi_store_group_put(phi_store *s, const struct phi_group *g) _phi_warn_unused_ _phi_nonnull_;
/* Deletes the user or group with this key; *ret_found tells whether one existed. */
int phi_store_entry_delete(phi_store *s, const char *key, bool *ret_found) _phi_warn_unused_
        _phi_nonnull_;
int phi_store_identities_clear(phi_store *s) _phi_warn_unused_ _phi_nonnull_;
int phi_store_identities_load(phi_store *s, struct phi_identities *ret) _phi_warn_unused_
        _phi_nonnull_;
/* Every user key (sorted), then every group key (sorted): *ret_n_users of the first
 * kind. For RFC 4533's present phase and the shrink check. */
int phi_store_keys_load(phi_store *s, char ***ret, size_t *ret_n, size_t *ret_n_users)
        _phi_warn_unused_ _phi_nonnull_;
int phi_store_memberships_replace(phi_store *s, const struct phi_identities *ids,
                                  const struct phi_resolved *res) _phi_warn_unused_ _phi_nonnull_;
int phi_store_counts(phi_store *s, uint64_t *ret_users, uint64_t *ret_groups) _phi_warn_unused_
        _phi_nonnull_;

/* -ENOENT when absent. */
int phi_store_user_get(phi_store *s, const char *name, struct phi_user *ret) _phi_warn_unused_
        _phi_nonnull_;
int phi_store_user_get_by_uid(phi_store *s, uint32_t uid, struct phi_user *ret) _phi_warn_unused_
        _phi_nonnull_;
/* Effective (nested) groups of a user name, and the directory group of the
 * user's primary gid, sorted. */
int phi_store_user_groups(phi_store *s, const char *name, char ***ret, size_t *ret_n)
        _phi_warn_unused_ _phi_nonnull_;

int phi_store_sync_state_get(phi_store *s, struct phi_sync_state *ret) _phi_warn_unused_
        _phi_nonnull_;
int phi_store_sync_state_put(phi_store *s, const struct phi_sync_state *st) _phi_warn_unused_
        _phi_nonnull_;

void phi_strv_free(char **v, size_t n);

/* Users gone from the directory, recorded in the refresh's own transaction
 * (before their row is deleted), removed once their TOTP state is revoked:
 * a crash in between revokes at the next start. */
int phi_store_departed_add(phi_store *s, const char *key, uint64_t now) _phi_warn_unused_ _phi_nonnull_;
int phi_store_departed_list(phi_store *s, struct phi_departed **ret, size_t *ret_n) _phi_warn_unused_
        _phi_nonnull_;
int phi_store_departed_delete(phi_store *s, const char *key) _phi_warn_unused_ _phi_nonnull_;

/* TOTP tokens, enrolment tickets and failure counters. The verifier calls these
 * inside one transaction per batch, so an acceptance and its watermark are
 * durable together. */
/* -ENOENT when the user has no token in that state. */
int phi_store_token_get(phi_store *s, const char *user, enum phi_token_state state,
                        struct phi_token *ret) _phi_warn_unused_ _phi_nonnull_;
/* Inserts or replaces the user's token in t->state. */
int phi_store_token_put(phi_store *s, const char *user, const struct phi_token *t) _phi_warn_unused_
        _phi_nonnull_;
/* Raises the watermark to step; -ESTALE when it is already at or above it (the
 * code was accepted by someone else first) or the token is gone. */
int phi_store_token_advance(phi_store *s, const char *user, enum phi_token_state state,
                            uint64_t step) _phi_warn_unused_ _phi_nonnull_;
/* The pending token replaces the active one; -ENOENT without a pending token. */
int phi_store_token_activate(phi_store *s, const char *user, uint64_t now) _phi_warn_unused_
        _phi_nonnull_;
/* Removes every token and the ticket of the user. */
int phi_store_token_delete(phi_store *s, const char *user, bool *ret_found) _phi_warn_unused_
        _phi_nonnull_;
/* Tickets are for one identity, like tokens. */
int phi_store_ticket_put(phi_store *s, const char *user, const struct phi_ticket *t)
        _phi_warn_unused_ _phi_nonnull_;
/* -ENOENT when there is none (expired ones are returned; the caller compares). */
int phi_store_ticket_get(phi_store *s, const char *user, struct phi_ticket *ret) _phi_warn_unused_
        _phi_nonnull_;
/* Removes every token and ticket of identity, whatever name they are under. */
int phi_store_identity_revoke(phi_store *s, const char *identity, bool *ret_token, bool *ret_ticket)
        _phi_warn_unused_ _phi_nonnull_;
/* The names with a token or ticket made before identities (not yet bound). */
int phi_store_legacy_users(phi_store *s, char ***ret, size_t *ret_n) _phi_warn_unused_ _phi_nonnull_;
int phi_store_ticket_delete(phi_store *s, const char *user) _phi_warn_unused_ _phi_nonnull_;
/* Absent counters read as all zero. Putting all-zero counters deletes the row. */
int phi_store_failures_get(phi_store *s, enum phi_failure_kind kind, const char *key,
                           struct phi_failures *ret) _phi_warn_unused_ _phi_nonnull_;
int phi_store_failures_put(phi_store *s, enum phi_failure_kind kind, const char *key,
                           const struct phi_failures *f) _phi_warn_unused_ _phi_nonnull_;
/* Drops counters whose window and lockout are both over, so names that were
 * only ever guessed do not pile up. */
int phi_store_failures_prune(phi_store *s, uint64_t now, uint64_t window) _phi_warn_unused_
        _phi_nonnull_;

/* Open sessions, one row each from pam_open_session() to its close (or to the
 * daemon noticing that its process has gone). -EEXIST when the id is taken. */
int phi_store_session_open(phi_store *s, const struct phi_session *session) _phi_warn_unused_ _phi_nonnull_;
/* Removes the session; *ret_old (may be NULL) gets what it was. -ENOENT when
 * there is none of that id; -EPERM, and nothing removed, when user is not NULL
 * and the session is another user's. */
int phi_store_session_close(phi_store *s, const char *id, const char *user, struct phi_session *ret_old)
        _phi_warn_unused_ _phi_nonnull_args_(1, 2);
/* Up to max open sessions with an id after `after` ("" for the first), in id
 * order; of one host, or of every host when host is NULL. Free with free(). */
int phi_store_session_list(phi_store *s, const char *host, const char *after, size_t max,
                           struct phi_session **ret, size_t *ret_n) _phi_warn_unused_ _phi_nonnull_args_(1, 3, 5, 6);

/* Elevation requests. put: a new one (-EEXIST when the id is taken); update:
 * its mutable columns by id (-ENOENT when none); get: -ENOENT when none. */
int phi_store_elev_put(phi_store *s, const struct phi_elev_request *r) _phi_warn_unused_ _phi_nonnull_;
int phi_store_elev_update(phi_store *s, const struct phi_elev_request *r) _phi_warn_unused_ _phi_nonnull_;
int phi_store_elev_get(phi_store *s, const char *id, struct phi_elev_request *ret) _phi_warn_unused_ _phi_nonnull_;
/* One approver's decision on a request: -EEXIST when they decided it before. */
int phi_store_elev_decision_add(phi_store *s, const char *id, const char *approver, bool approve, const char *reason,
                                uint64_t when) _phi_warn_unused_ _phi_nonnull_;
/* Up to max requests in a state of state_mask (PHI_ELEV_MASK bits), of
 * requester ("" for anyone), with an id after `after` ("" for the first), in
 * id order. Free with free(). */
int phi_store_elev_list(phi_store *s, unsigned state_mask, const char *requester, const char *after, size_t max,
                        struct phi_elev_request **ret, size_t *ret_n) _phi_warn_unused_ _phi_nonnull_;
/* Backup and restore (backup.c, phiaccessd(8) BACKUP AND RESTORE). */
int phi_store_counts_get(phi_store *s, struct phi_store_counts *ret) _phi_warn_unused_ _phi_nonnull_;
/* A consistent copy of the shared part as of one moment, taken while the
 * verifier keeps committing, into dest (an existing empty file, or a new
 * one): itself a valid store of this backend, checked before this returns;
 * *ret counts what the copy holds. The identity part is not copied (it is
 * rebuilt from the directory). */
int phi_store_backup(phi_store *s, const char *dest, struct phi_store_counts *ret) _phi_warn_unused_
        _phi_nonnull_;
/* The replay floor of a restore: every token's watermark (pending ones too)
 * raised to at least step, so that no code of a step at or below it is
 * accepted again; *ret_raised counts the tokens it changed. */
int phi_store_tokens_raise_floor(phi_store *s, uint64_t step, uint64_t *ret_raised) _phi_warn_unused_
        _phi_nonnull_;
/* Removes every enrolment ticket; *ret_cleared counts them. */
int phi_store_tickets_clear(phi_store *s, uint64_t *ret_cleared) _phi_warn_unused_ _phi_nonnull_;

/* The SQLite backend's check of a file offered for restore, before anything
 * opens it as a store (which would create the tables in any SQLite file):
 * the file passes PRAGMA integrity_check, has the shared part's tables and a
 * schema version this code knows. -EUCLEAN (corrupt), -EMEDIUMTYPE (an SQLite
 * file, not a phi store), -EPROTONOSUPPORT (newer than this code), with a
 * sentence in why. *ret_version is the file's schema version. */
int phi_store_sqlite_file_check(const char *path, unsigned *ret_version, char *why, size_t why_len)
        _phi_warn_unused_ _phi_nonnull_;
/* The newest schema version of the shared part this code knows. */
unsigned phi_store_sqlite_schema_latest(void);

/* The audit log. append: one record (-EEXIST when its seq is taken); the
 * tree's saved state (hex of phi_audit_tree_save(); -ENOENT when the log is
 * empty and never saved); a leaf's hash (-ENOENT past the end); rows: up to
 * max records with seq >= from that pass the filter, in seq order (free with
 * phi_audit_rows_free()); checkpoints: up to max with size >= from_size, in
 * size order (free with phi_audit_checkpoint_rows_free()). */
int phi_store_audit_append(phi_store *s, const struct phi_audit_row *row) _phi_warn_unused_ _phi_nonnull_;
int phi_store_audit_tree_get(phi_store *s, char *hex, size_t cap) _phi_warn_unused_ _phi_nonnull_;
int phi_store_audit_tree_put(phi_store *s, const char *hex) _phi_warn_unused_ _phi_nonnull_;
int phi_store_audit_leaf_hash(phi_store *s, uint64_t seq, char hex[65]) _phi_warn_unused_ _phi_nonnull_;
int phi_store_audit_rows(phi_store *s, const struct phi_audit_filter *f, uint64_t from, size_t max,
                         struct phi_audit_row **ret, size_t *ret_n) _phi_warn_unused_ _phi_nonnull_args_(1, 5, 6);
int phi_store_audit_checkpoint_put(phi_store *s, uint64_t size, const char *note, uint64_t created)
        _phi_warn_unused_ _phi_nonnull_;
int phi_store_audit_checkpoints(phi_store *s, uint64_t from_size, size_t max, struct phi_audit_checkpoint_row **ret,
                                size_t *ret_n) _phi_warn_unused_ _phi_nonnull_;

/* Several daemons sharing one store (phiaccessd(8) FLEET). */

/* The audit tree's saved state, as phi_store_audit_tree_get(), read in a round
 * that may append: the row stays locked against the other writers until the
 * transaction ends, so the seq the round gives out is the store's. SQLite:
 * BEGIN IMMEDIATE holds the database's write lock already; PostgreSQL:
 * SELECT ... FOR UPDATE. -ENOENT when the log was never saved. */
int phi_store_audit_tree_lock(phi_store *s, char *hex, size_t cap) _phi_warn_unused_ _phi_nonnull_;
/* The newest stored checkpoint's size and time; -ENOENT when there is none. */
int phi_store_audit_checkpoint_last(phi_store *s, uint64_t *ret_size, uint64_t *ret_created) _phi_warn_unused_
        _phi_nonnull_;
/* r's mutable columns, written only if the row is still as old has it (its
 * state, approvals, denials and review): a conditional update, so that of two
 * daemons making the same transition only one does. -ESTALE when the row
 * changed meanwhile (the caller re-reads), -ENOENT when there is none. */
int phi_store_elev_transition(phi_store *s, const struct phi_elev_request *r, const struct phi_elev_request *old)
        _phi_warn_unused_ _phi_nonnull_;
/* Appends a change in the caller's transaction, the one that makes it: its
 * seq is the next one (max + 1), given out under the round's lock (the
 * audit tree's), so that seqs commit in order and a reader that has applied
 * seq N has seen every change up to N. */
int phi_store_change_add(phi_store *s, enum phi_change_kind kind, const char *subject, const char *host,
                         uint64_t created) _phi_warn_unused_ _phi_nonnull_;
/* Up to max changes with seq > after, in seq order. Free with free(). */
int phi_store_changes_after(phi_store *s, uint64_t after, size_t max, struct phi_change **ret, size_t *ret_n)
        _phi_warn_unused_ _phi_nonnull_;
/* The newest change's seq, 0 when there is none: the cheap poll. */
int phi_store_changes_max(phi_store *s, uint64_t *ret) _phi_warn_unused_ _phi_nonnull_;
/* Removes the changes created before `before` (Unix seconds), except the
 * newest, whose seq the next one follows. */
int phi_store_changes_prune(phi_store *s, uint64_t before) _phi_warn_unused_ _phi_nonnull_;
/* The wake-up a backend may offer besides the poll of phi_store_changes_max:
 * a descriptor that becomes readable when another daemon may have committed a
 * change (PostgreSQL: a connection that LISTENs, the change_add of each
 * writer NOTIFYing in its transaction). The reader then calls ack (it
 * consumes what woke it) and reads the feed: the table is the truth, a
 * notification only says when to look, and one missed waits for the next
 * poll. -EOPNOTSUPP when the backend has none (SQLite: the poll alone). */
int phi_store_changes_wake_fd(phi_store *s) _phi_warn_unused_ _phi_nonnull_;
void phi_store_changes_wake_ack(phi_store *s) _phi_nonnull_;

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Backend selection and the thin calls through its ops table. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "store.h"

struct phi_store {
        const struct phi_store_ops *ops;
        void *backend;
        const struct phi_identity_ops *iops;
        void *ibackend;             /* NULL when the identity part is not opened */
};

static const struct phi_store_ops *const backends[] = {
        &phi_store_sqlite_ops,
        &phi_store_pg_ops,
};

void phi_strv_free(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

void phi_departed_free(struct phi_departed *d, size_t n) {
        if (!d)
                return;
        for (size_t i = 0; i < n; i++) {
                free(d[i].key);
                free(d[i].name);
        }
        free(d);
}

void phi_sync_state_clear(struct phi_sync_state *s) {
        free(s->cookie);
        free(s->search);
        *s = (struct phi_sync_state){ 0 };
}

int phi_store_identities_path(const char *location, char **ret) {
        size_t n = strlen(location);
        char *p;

        if (n == 0 || strcmp(location, ":memory:") == 0)
                p = strdup(location);
        else if (n > 3 && strcmp(location + n - 3, ".db") == 0) {
                if (asprintf(&p, "%.*s-identities.db", (int) (n - 3), location) < 0)
                        p = NULL;
        } else if (asprintf(&p, "%s-identities", location) < 0)
                p = NULL;
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int phi_store_open(const char *backend, const char *location, enum phi_store_identities identities,
                   phi_store **ret) {
        return phi_store_open_params(&(struct phi_store_params){ .backend = backend, .location = location },
                                     identities, ret);
}

int phi_store_open_config(const struct phi_config *c, enum phi_store_identities identities, phi_store **ret) {
        _cleanup_free_ char *ipath = NULL;
        struct phi_store_params p = { .backend = c->store_backend, .location = c->store_path,
                                      .synchronous_commit = c->store_synchronous_commit };
        int r;

        /* PostgreSQL: the identities stay in the file beside `path`, where
         * SQLite keeps them; the shared part is at the URI. */
        if (strcmp(c->store_backend, "sqlite") != 0) {
                if ((r = phi_store_identities_path(c->store_path, &ipath)) < 0)
                        return r;
                p.location = c->store_uri;
                p.identities = ipath;
        }
        return phi_store_open_params(&p, identities, ret);
}

int phi_store_open_params(const struct phi_store_params *p, enum phi_store_identities identities,
                          phi_store **ret) {
        _cleanup_free_ char *ipath = NULL;
        const struct phi_store_ops *ops = NULL;
        phi_store *s;
        int r;

        for (size_t i = 0; i < PHI_ELEMENTSOF(backends); i++)
                if (strcmp(backends[i]->name, p->backend) == 0)
                        ops = backends[i];
        if (!ops)
                return -EOPNOTSUPP;
        if (p->identities)
                ipath = strdup(p->identities);
        else if ((r = phi_store_identities_path(p->location, &ipath)) < 0)
                return r;
        if (!ipath)
                return -ENOMEM;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->ops = ops;
        s->iops = &phi_identity_sqlite_ops;
        /* The shared part first: opening it makes the identity file (and moves
         * an old store's identities there), which a read-only open needs. */
        r = ops->open(p, ipath, &s->backend);
        if (r < 0) {
                free(s);
                return r;
        }
        if (identities != PHI_IDENTITIES_NONE &&
            (r = s->iops->open(ipath, identities == PHI_IDENTITIES_READ, &s->ibackend)) < 0) {
                phi_store_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

const char *phi_store_backend_name(const phi_store *s) { return s->ops->name; }

int phi_store_probe(phi_store *s, char *where, size_t where_len, bool *ret_reachable) {
        return s->ops->probe(s->backend, where, where_len, ret_reachable);
}

void phi_store_free(phi_store *s) {
        if (!s)
                return;
        if (s->ibackend)
                s->iops->close(s->ibackend);
        s->ops->close(s->backend);
        free(s);
}

int phi_store_begin(phi_store *s) { return s->ops->begin(s->backend); }
int phi_store_commit(phi_store *s) { return s->ops->commit(s->backend); }
void phi_store_rollback(phi_store *s) { s->ops->rollback(s->backend); }
int phi_store_schema_version(phi_store *s, unsigned *ret) {
        return s->ops->schema_version(s->backend, ret);
}
int phi_store_identities_begin(phi_store *s) { return s->ibackend ? s->iops->begin(s->ibackend) : -EBADF; }
int phi_store_identities_commit(phi_store *s) { return s->ibackend ? s->iops->commit(s->ibackend) : -EBADF; }
void phi_store_identities_rollback(phi_store *s) {
        if (s->ibackend)
                s->iops->rollback(s->ibackend);
}
int phi_store_identities_schema_version(phi_store *s, unsigned *ret) {
        return s->ibackend ? s->iops->schema_version(s->ibackend, ret) : -EBADF;
}
int phi_store_user_put(phi_store *s, const struct phi_user *u) {
        return s->ibackend ? s->iops->user_put(s->ibackend, u) : -EBADF;
}
int phi_store_group_put(phi_store *s, const struct phi_group *g) {
        return s->ibackend ? s->iops->group_put(s->ibackend, g) : -EBADF;
}
int phi_store_entry_delete(phi_store *s, const char *key, bool *ret_found) {
        return s->ibackend ? s->iops->entry_delete(s->ibackend, key, ret_found) : -EBADF;
}
int phi_store_identities_clear(phi_store *s) {
        return s->ibackend ? s->iops->identities_clear(s->ibackend) : -EBADF;
}
int phi_store_identities_load(phi_store *s, struct phi_identities *ret) {
        return s->ibackend ? s->iops->identities_load(s->ibackend, ret) : -EBADF;
}
int phi_store_keys_load(phi_store *s, char ***ret, size_t *ret_n, size_t *ret_n_users) {
        return s->ibackend ? s->iops->keys_load(s->ibackend, ret, ret_n, ret_n_users) : -EBADF;
}
int phi_store_memberships_replace(phi_store *s, const struct phi_identities *ids,
                                  const struct phi_resolved *res) {
        return s->ibackend ? s->iops->memberships_replace(s->ibackend, ids, res) : -EBADF;
}
int phi_store_counts(phi_store *s, uint64_t *ret_users, uint64_t *ret_groups) {
        return s->ibackend ? s->iops->counts(s->ibackend, ret_users, ret_groups) : -EBADF;
}
int phi_store_user_get(phi_store *s, const char *name, struct phi_user *ret) {
        return s->ibackend ? s->iops->user_get(s->ibackend, name, ret) : -EBADF;
}
int phi_store_user_get_by_uid(phi_store *s, uint32_t uid, struct phi_user *ret) {
        return s->ibackend ? s->iops->user_get_by_uid(s->ibackend, uid, ret) : -EBADF;
}
int phi_store_user_groups(phi_store *s, const char *name, char ***ret, size_t *ret_n) {
        return s->ibackend ? s->iops->user_groups(s->ibackend, name, ret, ret_n) : -EBADF;
}
int phi_store_sync_state_get(phi_store *s, struct phi_sync_state *ret) {
        return s->ibackend ? s->iops->sync_state_get(s->ibackend, ret) : -EBADF;
}
int phi_store_sync_state_put(phi_store *s, const struct phi_sync_state *st) {
        return s->ibackend ? s->iops->sync_state_put(s->ibackend, st) : -EBADF;
}

const char *phi_token_state_name(enum phi_token_state st) {
        return st == PHI_TOKEN_PENDING ? "pending" : st == PHI_TOKEN_ACTIVE ? "active" : "none";
}

int phi_store_token_get(phi_store *s, const char *user, enum phi_token_state state,
                        struct phi_token *ret) {
        return s->ops->token_get(s->backend, user, state, ret);
}
int phi_store_token_put(phi_store *s, const char *user, const struct phi_token *t) {
        return s->ops->token_put(s->backend, user, t);
}
int phi_store_token_advance(phi_store *s, const char *user, enum phi_token_state state, uint64_t step) {
        return s->ops->token_advance(s->backend, user, state, step);
}
int phi_store_token_activate(phi_store *s, const char *user, uint64_t now) {
        return s->ops->token_activate(s->backend, user, now);
}
int phi_store_token_delete(phi_store *s, const char *user, bool *ret_found) {
        return s->ops->token_delete(s->backend, user, ret_found);
}
int phi_store_ticket_put(phi_store *s, const char *user, const struct phi_ticket *t) {
        return s->ops->ticket_put(s->backend, user, t);
}
int phi_store_ticket_get(phi_store *s, const char *user, struct phi_ticket *ret) {
        return s->ops->ticket_get(s->backend, user, ret);
}
int phi_store_identity_revoke(phi_store *s, const char *identity, bool *ret_token, bool *ret_ticket) {
        return s->ops->identity_revoke(s->backend, identity, ret_token, ret_ticket);
}
int phi_store_legacy_users(phi_store *s, char ***ret, size_t *ret_n) {
        return s->ops->legacy_users(s->backend, ret, ret_n);
}
int phi_store_departed_add(phi_store *s, const char *key, uint64_t now) {
        return s->ibackend ? s->iops->departed_add(s->ibackend, key, now) : -EBADF;
}
int phi_store_departed_list(phi_store *s, struct phi_departed **ret, size_t *ret_n) {
        return s->ibackend ? s->iops->departed_list(s->ibackend, ret, ret_n) : -EBADF;
}
int phi_store_departed_delete(phi_store *s, const char *key) {
        return s->ibackend ? s->iops->departed_delete(s->ibackend, key) : -EBADF;
}
int phi_store_ticket_delete(phi_store *s, const char *user) {
        return s->ops->ticket_delete(s->backend, user);
}
int phi_store_failures_get(phi_store *s, enum phi_failure_kind kind, const char *key,
                           struct phi_failures *ret) {
        return s->ops->failures_get(s->backend, kind, key, ret);
}
int phi_store_failures_put(phi_store *s, enum phi_failure_kind kind, const char *key,
                           const struct phi_failures *f) {
        return s->ops->failures_put(s->backend, kind, key, f);
}
int phi_store_failures_prune(phi_store *s, uint64_t now, uint64_t window) {
        return s->ops->failures_prune(s->backend, now, window);
}
int phi_store_session_open(phi_store *s, const struct phi_session *session) {
        return s->ops->session_open(s->backend, session);
}
int phi_store_session_close(phi_store *s, const char *id, const char *user, struct phi_session *ret_old) {
        return s->ops->session_close(s->backend, id, user, ret_old);
}
int phi_store_session_list(phi_store *s, const char *host, const char *after, size_t max,
                           struct phi_session **ret, size_t *ret_n) {
        return s->ops->session_list(s->backend, host, after, max, ret, ret_n);
}
int phi_store_elev_put(phi_store *s, const struct phi_elev_request *r) {
        return s->ops->elev_put(s->backend, r);
}
int phi_store_elev_update(phi_store *s, const struct phi_elev_request *r) {
        return s->ops->elev_update(s->backend, r);
}
int phi_store_elev_get(phi_store *s, const char *id, struct phi_elev_request *ret) {
        return s->ops->elev_get(s->backend, id, ret);
}
int phi_store_elev_decision_add(phi_store *s, const char *id, const char *approver, bool approve, const char *reason,
                                uint64_t when) {
        return s->ops->elev_decision_add(s->backend, id, approver, approve, reason, when);
}
int phi_store_elev_list(phi_store *s, unsigned state_mask, const char *requester, const char *after, size_t max,
                        struct phi_elev_request **ret, size_t *ret_n) {
        return s->ops->elev_list(s->backend, state_mask, requester, after, max, ret, ret_n);
}
int phi_store_counts_get(phi_store *s, struct phi_store_counts *ret) {
        return s->ops->counts(s->backend, ret);
}
int phi_store_backup(phi_store *s, const char *dest, struct phi_store_counts *ret) {
        return s->ops->backup(s->backend, dest, ret);
}
int phi_store_tokens_raise_floor(phi_store *s, uint64_t step, uint64_t *ret_raised) {
        return s->ops->tokens_raise_floor(s->backend, step, ret_raised);
}
int phi_store_tickets_clear(phi_store *s, uint64_t *ret_cleared) {
        return s->ops->tickets_clear(s->backend, ret_cleared);
}
int phi_store_audit_append(phi_store *s, const struct phi_audit_row *row) {
        return s->ops->audit_append(s->backend, row);
}
int phi_store_audit_tree_get(phi_store *s, char *hex, size_t cap) {
        return s->ops->audit_tree_get(s->backend, hex, cap);
}
int phi_store_audit_tree_put(phi_store *s, const char *hex) {
        return s->ops->audit_tree_put(s->backend, hex);
}
int phi_store_audit_leaf_hash(phi_store *s, uint64_t seq, char hex[65]) {
        return s->ops->audit_leaf_hash(s->backend, seq, hex);
}
int phi_store_audit_rows(phi_store *s, const struct phi_audit_filter *f, uint64_t from, size_t max,
                         struct phi_audit_row **ret, size_t *ret_n) {
        return s->ops->audit_rows(s->backend, f, from, max, ret, ret_n);
}
int phi_store_audit_checkpoint_put(phi_store *s, uint64_t size, const char *note, uint64_t created) {
        return s->ops->audit_checkpoint_put(s->backend, size, note, created);
}
int phi_store_audit_checkpoints(phi_store *s, uint64_t from_size, size_t max, struct phi_audit_checkpoint_row **ret,
                                size_t *ret_n) {
        return s->ops->audit_checkpoints(s->backend, from_size, max, ret, ret_n);
}
int phi_store_audit_tree_lock(phi_store *s, char *hex, size_t cap) {
        return s->ops->audit_tree_lock(s->backend, hex, cap);
}
int phi_store_audit_checkpoint_last(phi_store *s, uint64_t *ret_size, uint64_t *ret_created) {
        return s->ops->audit_checkpoint_last(s->backend, ret_size, ret_created);
}
int phi_store_elev_transition(phi_store *s, const struct phi_elev_request *r, const struct phi_elev_request *old) {
        return s->ops->elev_transition(s->backend, r, old);
}
int phi_store_change_add(phi_store *s, enum phi_change_kind kind, const char *subject, const char *host,
                         uint64_t created) {
        if (strlen(subject) > PHI_CHANGE_SUBJECT_MAX || strlen(host) > 255)
                return -ENAMETOOLONG;
        return s->ops->change_add(s->backend, kind, subject, host, created);
}
int phi_store_changes_after(phi_store *s, uint64_t after, size_t max, struct phi_change **ret, size_t *ret_n) {
        return s->ops->changes_after(s->backend, after, max, ret, ret_n);
}
int phi_store_changes_max(phi_store *s, uint64_t *ret) {
        return s->ops->changes_max(s->backend, ret);
}
int phi_store_changes_prune(phi_store *s, uint64_t before) {
        return s->ops->changes_prune(s->backend, before);
}
int phi_store_changes_wake_fd(phi_store *s) {
        return s->ops->changes_wake_fd ? s->ops->changes_wake_fd(s->backend) : -EOPNOTSUPP;
}
void phi_store_changes_wake_ack(phi_store *s) {
        if (s->ops->changes_wake_ack)
                s->ops->changes_wake_ack(s->backend);
}

void phi_audit_rows_free(struct phi_audit_row *rows, size_t n) {
        if (!rows)
                return;
        for (size_t i = 0; i < n; i++)
                free(rows[i].leaf);
        free(rows);
}

void phi_audit_checkpoint_rows_free(struct phi_audit_checkpoint_row *rows, size_t n) {
        if (!rows)
                return;
        for (size_t i = 0; i < n; i++)
                free(rows[i].note);
        free(rows);
}

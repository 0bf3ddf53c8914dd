/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Backend selection and the thin calls through its ops table. */

#include "store.h"

struct phi_store {
        const struct phi_store_ops *ops;
        void *backend;
};

static const struct phi_store_ops *const backends[] = {
        &phi_store_sqlite_ops,
};

void phi_strv_free(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

void phi_sync_state_clear(struct phi_sync_state *s) {
        free(s->cookie);
        free(s->search);
        *s = (struct phi_sync_state){ 0 };
}

int phi_store_open(const char *backend, const char *location, phi_store **ret) {
        const struct phi_store_ops *ops = NULL;
        phi_store *s;
        int r;

        for (size_t i = 0; i < PHI_ELEMENTSOF(backends); i++)
                if (strcmp(backends[i]->name, backend) == 0)
                        ops = backends[i];
        if (!ops)
                return -EOPNOTSUPP;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->ops = ops;
        r = ops->open(location, &s->backend);
        if (r < 0) {
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

void phi_store_free(phi_store *s) {
        if (!s)
                return;
        s->ops->close(s->backend);
        free(s);
}

int phi_store_begin(phi_store *s) { return s->ops->begin(s->backend); }
int phi_store_commit(phi_store *s) { return s->ops->commit(s->backend); }
void phi_store_rollback(phi_store *s) { s->ops->rollback(s->backend); }
int phi_store_schema_version(phi_store *s, unsigned *ret) {
        return s->ops->schema_version(s->backend, ret);
}
int phi_store_user_put(phi_store *s, const struct phi_user *u) {
        return s->ops->user_put(s->backend, u);
}
int phi_store_group_put(phi_store *s, const struct phi_group *g) {
        return s->ops->group_put(s->backend, g);
}
int phi_store_entry_delete(phi_store *s, const char *key, bool *ret_found) {
        return s->ops->entry_delete(s->backend, key, ret_found);
}
int phi_store_identities_clear(phi_store *s) { return s->ops->identities_clear(s->backend); }
int phi_store_identities_load(phi_store *s, struct phi_identities *ret) {
        return s->ops->identities_load(s->backend, ret);
}
int phi_store_keys_load(phi_store *s, char ***ret, size_t *ret_n, size_t *ret_n_users) {
        return s->ops->keys_load(s->backend, ret, ret_n, ret_n_users);
}
int phi_store_memberships_replace(phi_store *s, const struct phi_identities *ids,
                                  const struct phi_resolved *res) {
        return s->ops->memberships_replace(s->backend, ids, res);
}
int phi_store_counts(phi_store *s, uint64_t *ret_users, uint64_t *ret_groups) {
        return s->ops->counts(s->backend, ret_users, ret_groups);
}
int phi_store_user_get(phi_store *s, const char *name, struct phi_user *ret) {
        return s->ops->user_get(s->backend, name, ret);
}
int phi_store_user_get_by_uid(phi_store *s, uint32_t uid, struct phi_user *ret) {
        return s->ops->user_get_by_uid(s->backend, uid, ret);
}
int phi_store_user_groups(phi_store *s, const char *name, char ***ret, size_t *ret_n) {
        return s->ops->user_groups(s->backend, name, ret, ret_n);
}
int phi_store_sync_state_get(phi_store *s, struct phi_sync_state *ret) {
        return s->ops->sync_state_get(s->backend, ret);
}
int phi_store_sync_state_put(phi_store *s, const struct phi_sync_state *st) {
        return s->ops->sync_state_put(s->backend, st);
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
int phi_store_ticket_put(phi_store *s, const char *user, uint64_t expires, uint64_t now) {
        return s->ops->ticket_put(s->backend, user, expires, now);
}
int phi_store_ticket_get(phi_store *s, const char *user, uint64_t *ret_expires) {
        return s->ops->ticket_get(s->backend, user, ret_expires);
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

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The in-memory directory view and nested-group resolution. Lookups use sorted
 * arrays and bsearch: the whole view is rebuilt per change set, and sorting
 * 100,000 DNs costs less than maintaining a hash table across threads. */

#include <stdio.h>

#include "identity.h"

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

void phi_user_clear(struct phi_user *u) {
        free(u->key);
        free(u->dn);
        free(u->name);
        free(u->gecos);
        free(u->home);
        free(u->shell);
        *u = (struct phi_user){ 0 };
}

void phi_group_clear(struct phi_group *g) {
        free(g->key);
        free(g->dn);
        free(g->name);
        strv_free(g->member_uids, g->n_member_uids);
        strv_free(g->member_dns, g->n_member_dns);
        *g = (struct phi_group){ 0 };
}

static int dup_field(const char *src, char **dst) {
        if (!src) {
                *dst = NULL;
                return 0;
        }
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

static int strv_copy(char *const *src, size_t n, char ***dst) {
        char **v;

        *dst = NULL;
        if (n == 0)
                return 0;
        v = calloc(n, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(v[i] = strdup(src[i]))) {
                        strv_free(v, i);
                        return -ENOMEM;
                }
        *dst = v;
        return 0;
}

int phi_user_copy(const struct phi_user *s, struct phi_user *d) {
        struct phi_user u = { .uid = s->uid, .gid = s->gid };
        int r;

        if ((r = dup_field(s->key, &u.key)) < 0 || (r = dup_field(s->dn, &u.dn)) < 0 ||
            (r = dup_field(s->name, &u.name)) < 0 || (r = dup_field(s->gecos, &u.gecos)) < 0 ||
            (r = dup_field(s->home, &u.home)) < 0 || (r = dup_field(s->shell, &u.shell)) < 0) {
                phi_user_clear(&u);
                return r;
        }
        *d = u;
        return 0;
}

int phi_group_copy(const struct phi_group *s, struct phi_group *d) {
        struct phi_group g = { .gid = s->gid };
        int r;

        if ((r = dup_field(s->key, &g.key)) < 0 || (r = dup_field(s->dn, &g.dn)) < 0 ||
            (r = dup_field(s->name, &g.name)) < 0 ||
            (r = strv_copy(s->member_uids, s->n_member_uids, &g.member_uids)) < 0) {
                phi_group_clear(&g);
                return r;
        }
        g.n_member_uids = s->n_member_uids;
        if ((r = strv_copy(s->member_dns, s->n_member_dns, &g.member_dns)) < 0) {
                phi_group_clear(&g);
                return r;
        }
        g.n_member_dns = s->n_member_dns;
        *d = g;
        return 0;
}

void phi_identities_clear(struct phi_identities *ids) {
        for (size_t i = 0; i < ids->n_users; i++)
                phi_user_clear(&ids->users[i]);
        for (size_t i = 0; i < ids->n_groups; i++)
                phi_group_clear(&ids->groups[i]);
        free(ids->users);
        free(ids->groups);
        *ids = (struct phi_identities){ 0 };
}

static int grow(void **p, size_t *cap, size_t n, size_t size) {
        void *np;
        size_t ncap;

        if (n < *cap)
                return 0;
        ncap = *cap ? *cap * 2 : 64;
        np = reallocarray(*p, ncap, size);
        if (!np)
                return -ENOMEM;
        *p = np;
        *cap = ncap;
        return 0;
}

int phi_identities_add_user(struct phi_identities *ids, struct phi_user *u) {
        int r = grow((void **) &ids->users, &ids->cap_users, ids->n_users, sizeof(*u));

        if (r < 0)
                return r;
        ids->users[ids->n_users++] = *u;
        *u = (struct phi_user){ 0 };
        return 0;
}

int phi_identities_add_group(struct phi_identities *ids, struct phi_group *g) {
        int r = grow((void **) &ids->groups, &ids->cap_groups, ids->n_groups, sizeof(*g));

        if (r < 0)
                return r;
        ids->groups[ids->n_groups++] = *g;
        *g = (struct phi_group){ 0 };
        return 0;
}

/* Index arrays sorted by one field, for duplicate detection and lookups. */
struct sort_ctx {
        const struct phi_identities *ids;
        int field;
};

enum { F_USER_NAME, F_USER_UID, F_USER_KEY, F_USER_DN, F_GROUP_NAME, F_GROUP_GID, F_GROUP_KEY, F_GROUP_DN };

static int cmp_index(const void *a, const void *b, void *arg) {
        const struct sort_ctx *c = arg;
        size_t i = *(const size_t *) a, j = *(const size_t *) b;
        const struct phi_user *u = c->ids->users;
        const struct phi_group *g = c->ids->groups;
        int r = 0;

        switch (c->field) {
        case F_USER_NAME: r = strcmp(u[i].name, u[j].name); break;
        case F_USER_KEY: r = strcmp(u[i].key, u[j].key); break;
        case F_USER_DN: r = strcmp(u[i].dn, u[j].dn); break;
        case F_USER_UID: r = (u[i].uid > u[j].uid) - (u[i].uid < u[j].uid); break;
        case F_GROUP_NAME: r = strcmp(g[i].name, g[j].name); break;
        case F_GROUP_KEY: r = strcmp(g[i].key, g[j].key); break;
        case F_GROUP_DN: r = strcmp(g[i].dn, g[j].dn); break;
        case F_GROUP_GID: r = (g[i].gid > g[j].gid) - (g[i].gid < g[j].gid); break;
        }
        /* Ties keep input order, so "the earlier entry wins" is well defined. */
        return r ? r : (i > j) - (i < j);
}

static size_t *sorted_index(const struct phi_identities *ids, int field, size_t n) {
        struct sort_ctx ctx = { ids, field };
        size_t *idx = malloc((n ? n : 1) * sizeof(*idx));

        if (!idx)
                return NULL;
        for (size_t i = 0; i < n; i++)
                idx[i] = i;
        qsort_r(idx, n, sizeof(*idx), cmp_index, &ctx);
        return idx;
}

static bool same(const struct phi_identities *ids, int field, size_t i, size_t j) {
        const struct phi_user *u = ids->users;
        const struct phi_group *g = ids->groups;

        switch (field) {
        case F_USER_NAME: return strcmp(u[i].name, u[j].name) == 0;
        case F_USER_KEY: return strcmp(u[i].key, u[j].key) == 0;
        case F_USER_UID: return u[i].uid == u[j].uid;
        case F_GROUP_NAME: return strcmp(g[i].name, g[j].name) == 0;
        case F_GROUP_KEY: return strcmp(g[i].key, g[j].key) == 0;
        case F_GROUP_GID: return g[i].gid == g[j].gid;
        }
        return false;
}

size_t phi_identities_dedup(struct phi_identities *ids, char *example, size_t example_len) {
        static const int user_fields[] = { F_USER_KEY, F_USER_NAME, F_USER_UID };
        static const int group_fields[] = { F_GROUP_KEY, F_GROUP_NAME, F_GROUP_GID };
        size_t dropped = 0;
        bool *drop_u = calloc(ids->n_users + 1, 1), *drop_g = calloc(ids->n_groups + 1, 1);

        if (example_len > 0)
                example[0] = 0;
        if (!drop_u || !drop_g)
                goto out;
        for (size_t f = 0; f < PHI_ELEMENTSOF(user_fields); f++) {
                size_t *idx = sorted_index(ids, user_fields[f], ids->n_users);
                if (!idx)
                        goto out;
                for (size_t k = 1; k < ids->n_users; k++)
                        if (same(ids, user_fields[f], idx[k - 1], idx[k]) && !drop_u[idx[k]]) {
                                drop_u[idx[k]] = true;
                                if (example_len > 0 && !example[0])
                                        snprintf(example, example_len, "user %s (%s)",
                                                 ids->users[idx[k]].name, ids->users[idx[k]].dn);
                        }
                free(idx);
        }
        for (size_t f = 0; f < PHI_ELEMENTSOF(group_fields); f++) {
                size_t *idx = sorted_index(ids, group_fields[f], ids->n_groups);
                if (!idx)
                        goto out;
                for (size_t k = 1; k < ids->n_groups; k++)
                        if (same(ids, group_fields[f], idx[k - 1], idx[k]) && !drop_g[idx[k]]) {
                                drop_g[idx[k]] = true;
                                if (example_len > 0 && !example[0])
                                        snprintf(example, example_len, "group %s (%s)",
                                                 ids->groups[idx[k]].name, ids->groups[idx[k]].dn);
                        }
                free(idx);
        }
        {
                size_t w = 0;
                for (size_t i = 0; i < ids->n_users; i++) {
                        if (drop_u[i]) {
                                phi_user_clear(&ids->users[i]);
                                dropped++;
                        } else
                                ids->users[w++] = ids->users[i];
                }
                ids->n_users = w;
                w = 0;
                for (size_t i = 0; i < ids->n_groups; i++) {
                        if (drop_g[i]) {
                                phi_group_clear(&ids->groups[i]);
                                dropped++;
                        } else
                                ids->groups[w++] = ids->groups[i];
                }
                ids->n_groups = w;
        }
out:
        free(drop_u);
        free(drop_g);
        return dropped;
}

void phi_resolved_clear(struct phi_resolved *r) {
        for (size_t i = 0; i < r->n_groups; i++)
                free(r->groups[i].names);
        free(r->groups);
        *r = (struct phi_resolved){ 0 };
}

static int cmp_str_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Finds dn among the sorted index; SIZE_MAX when absent. */
static size_t find_dn(const size_t *idx, size_t n, const char *dn, bool users,
                      const struct phi_identities *ids) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const char *v = users ? ids->users[idx[mid]].dn : ids->groups[idx[mid]].dn;
                int c = strcmp(dn, v);
                if (c == 0)
                        return idx[mid];
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return SIZE_MAX;
}

struct graph {
        size_t **children;     /* per group: indexes of nested groups */
        size_t *n_children;
        const char ***users;   /* per group: direct user names (point into ids) */
        size_t *n_users;
};

static void graph_free(struct graph *g, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (g->children)
                        free(g->children[i]);
                if (g->users)
                        free(g->users[i]);
        }
        free(g->children);
        free(g->n_children);
        free(g->users);
        free(g->n_users);
}

/* Iterative DFS colouring: a grey node reached again closes a cycle. */
static void find_cycles(const struct phi_identities *ids, const struct graph *g,
                        struct phi_resolved *res) {
        size_t n = ids->n_groups;
        unsigned char *colour = calloc(n + 1, 1);
        size_t *stack = malloc((n + 1) * sizeof(size_t)), *pos = calloc(n + 1, sizeof(size_t));

        if (!colour || !stack || !pos)
                goto out;
        for (size_t s = 0; s < n; s++) {
                size_t depth = 0;
                if (colour[s])
                        continue;
                stack[depth++] = s;
                colour[s] = 1;
                pos[s] = 0;
                while (depth > 0) {
                        size_t v = stack[depth - 1];
                        if (pos[v] < g->n_children[v]) {
                                size_t w = g->children[v][pos[v]++];
                                if (colour[w] == 1) {
                                        res->n_cycles++;
                                        if (!res->cycle_example[0])
                                                snprintf(res->cycle_example, sizeof(res->cycle_example),
                                                         "%s -> %s", ids->groups[v].name,
                                                         ids->groups[w].name);
                                } else if (colour[w] == 0) {
                                        colour[w] = 1;
                                        pos[w] = 0;
                                        stack[depth++] = w;
                                }
                        } else {
                                colour[v] = 2;
                                depth--;
                        }
                }
        }
out:
        free(colour);
        free(stack);
        free(pos);
}

int phi_identities_resolve(const struct phi_identities *ids, unsigned flags, struct phi_resolved *ret) {
        struct phi_resolved res = { 0 };
        struct graph g = { 0 };
        size_t n = ids->n_groups;
        size_t *user_dn = NULL, *group_dn = NULL, *queue = NULL;
        unsigned *visited = NULL;
        int r = -ENOMEM;

        user_dn = sorted_index(ids, F_USER_DN, ids->n_users);
        group_dn = sorted_index(ids, F_GROUP_DN, n);
        g.children = calloc(n + 1, sizeof(*g.children));
        g.n_children = calloc(n + 1, sizeof(*g.n_children));
        g.users = calloc(n + 1, sizeof(*g.users));
        g.n_users = calloc(n + 1, sizeof(*g.n_users));
        res.groups = calloc(n + 1, sizeof(*res.groups));
        visited = calloc(n + 1, sizeof(*visited));
        queue = malloc((n + 1) * sizeof(*queue));
        if (!user_dn || !group_dn || !g.children || !g.n_children || !g.users || !g.n_users ||
            !res.groups || !visited || !queue)
                goto out;
        res.n_groups = n;

        for (size_t i = 0; i < n; i++) {
                const struct phi_group *gr = &ids->groups[i];
                size_t cap = gr->n_member_uids + gr->n_member_dns;
                g.users[i] = malloc((cap ? cap : 1) * sizeof(char *));
                g.children[i] = malloc((gr->n_member_dns ? gr->n_member_dns : 1) * sizeof(size_t));
                if (!g.users[i] || !g.children[i])
                        goto out;
                if (flags & PHI_RESOLVE_MEMBER_UID)
                        for (size_t k = 0; k < gr->n_member_uids; k++)
                                g.users[i][g.n_users[i]++] = gr->member_uids[k];
                if (flags & PHI_RESOLVE_MEMBER_DN)
                        for (size_t k = 0; k < gr->n_member_dns; k++) {
                                size_t u = find_dn(user_dn, ids->n_users, gr->member_dns[k], true, ids);
                                size_t c;
                                if (u != SIZE_MAX) {
                                        g.users[i][g.n_users[i]++] = ids->users[u].name;
                                        continue;
                                }
                                c = find_dn(group_dn, n, gr->member_dns[k], false, ids);
                                /* A DN that is neither (a user filtered out, another
                                 * subtree) contributes nothing. */
                                if (c != SIZE_MAX && c != i)
                                        g.children[i][g.n_children[i]++] = c;
                        }
        }
        find_cycles(ids, &g, &res);

        /* Breadth-first walk from each group; visited[] stamps with the walk number
         * so the array need not be cleared between walks. */
        for (size_t i = 0; i < n; i++) {
                size_t head = 0, tail = 0, total = 0, w = 0;
                const char **names;
                unsigned stamp = (unsigned) i + 1;

                queue[tail++] = i;
                visited[i] = stamp;
                while (head < tail) {
                        size_t v = queue[head++];
                        total += g.n_users[v];
                        for (size_t k = 0; k < g.n_children[v]; k++) {
                                size_t c = g.children[v][k];
                                if (visited[c] != stamp) {
                                        visited[c] = stamp;
                                        queue[tail++] = c;
                                }
                        }
                }
                names = malloc((total ? total : 1) * sizeof(*names));
                if (!names)
                        goto out;
                for (size_t q = 0; q < tail; q++)
                        for (size_t k = 0; k < g.n_users[queue[q]]; k++)
                                names[w++] = g.users[queue[q]][k];
                qsort(names, w, sizeof(*names), cmp_str_ptr);
                {
                        size_t u = 0;
                        for (size_t k = 0; k < w; k++)
                                if (u == 0 || strcmp(names[u - 1], names[k]) != 0)
                                        names[u++] = names[k];
                        w = u;
                }
                res.groups[i].names = names;
                res.groups[i].n = w;
                res.n_pairs += w;
        }
        *ret = res;
        res = (struct phi_resolved){ 0 };
        r = 0;
out:
        phi_resolved_clear(&res);
        graph_free(&g, n);
        free(user_dn);
        free(group_dn);
        free(visited);
        free(queue);
        return r;
}

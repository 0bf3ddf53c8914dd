/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's side of the grants snapshot (see grants_publish.h). */

#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "grants_publish.h"
#include "phi/policy.h"
#include "phi/snapshot.h"
#include "store.h"

int phi_grants_publish_path(const struct phi_config *c, char *buf, size_t size) {
        return phi_grants_path_for(c->snapshot_path ? c->snapshot_path : PHI_SNAPSHOT_PATH, buf, size);
}

/* Writes the list; when that fails, the file in place may hold a grant that
 * was just revoked: no grants at all until a publication succeeds (fail
 * closed). Unless the new file is in place after all (only the directory's
 * fsync failed, after the rename). */
static int publish_or_withdraw(const char *path, const struct phi_grant_entry *e, size_t n, gid_t min_gid,
                               uint64_t generation) {
        int r = phi_grants_write(path, e, n, min_gid, generation);

        if (r < 0) {
                phi_grants now = { 0 };
                bool ours = phi_grants_map(path, &now, NULL, NULL) == 0 && now.generation == generation;
                phi_grants_unmap(&now);
                if (!ours && phi_grants_remove(path) < 0) {
                        /* Nothing more to do: the error returned is the
                         * publication's; each grant still ends at its expiry. */
                }
        }
        return r;
}

int phi_grants_publish(const struct phi_config *c, const struct phi_grant_entry *grants, size_t n,
                       uint64_t generation) {
        char path[PATH_MAX];
        int r;

        if (n > 0 && !grants)
                return -EINVAL;
        if (c->min_gid == 0 || c->min_gid >= UINT32_MAX)
                return -EINVAL;
        if ((r = phi_grants_publish_path(c, path, sizeof(path))) < 0)
                return r;
        return publish_or_withdraw(path, grants, n, (gid_t) c->min_gid, generation);
}

static int local_gid(const char *path, const char *group, gid_t *ret_gid) {
        FILE *f = fopen(path, "re");
        _cleanup_free_ char *buf = NULL;
        size_t size = 4096;
        struct group g, *res;
        int r = -ENOENT, e;

        if (!f)
                return errno == ENOENT ? -ENOENT : phi_negative_errno();
        buf = malloc(size);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        /* fgetgrent_r() parses the file and nothing else: never NSS from inside
         * the daemon that feeds it (see localfiles.h); and the daemon has
         * threads, so not fgetgrent(). A line longer than the buffer is read
         * again with a larger one (a group of many members). */
        for (;;) {
                long pos = ftell(f);
                e = fgetgrent_r(f, &g, buf, size, &res);
                if (e == ERANGE && size < (16u << 20) && pos >= 0) {
                        char *p = realloc(buf, size * 2);
                        if (!p || fseek(f, pos, SEEK_SET) < 0) {
                                r = p ? phi_negative_errno() : -ENOMEM;
                                if (p)
                                        buf = p;
                                break;
                        }
                        buf = p;
                        size *= 2;
                        continue;
                }
                if (e != 0)
                        break;   /* ENOENT: the end; any other error: not found */
                if (strcmp(g.gr_name, group) == 0) {
                        *ret_gid = g.gr_gid;
                        r = 0;
                        break;
                }
        }
        fclose(f);
        return r;
}

int phi_grants_local_gid(const struct phi_config *c, const char *group, gid_t *ret_gid) {
        return local_gid(c->group_file ? c->group_file : "/etc/group", group, ret_gid);
}

/* The gid of a role's group that is not local: the directory's, as the daemon
 * published it (nss_phi merges a grant into that group when name and gid
 * agree). */
static int snapshot_gid(const char *snapshot_path, const char *group, gid_t *ret_gid) {
        struct phi_snapshot_group g;
        phi_snapshot s;
        int r = phi_snapshot_map(snapshot_path, &s, NULL, NULL);

        if (r < 0)
                return r;
        r = phi_snapshot_group_by_name(&s, group, &g);
        if (r == 0)
                *ret_gid = g.gid;
        phi_snapshot_unmap(&s);
        return r;
}

static uint64_t next_generation(void) {
        static atomic_uint_fast64_t last;
        struct timespec ts;
        uint64_t now = 0, prev, gen;

        if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && ts.tv_sec > 0)
                now = (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
        prev = atomic_load(&last);
        do
                gen = now > prev ? now : prev + 1;
        while (!atomic_compare_exchange_weak(&last, &prev, gen));
        return gen;
}

/* The roles' groups seen in one publication: each name resolved once, and no
 * gid given to two names (the writer would refuse the whole file). */
struct group_gid {
        char name[PHI_NAME_MAX + 1];
        int r;
        gid_t gid;
};

static const struct group_gid *group_gid(struct group_gid *t, size_t max, const char *snapshot_path,
                                         const char *group_file, const char *name) {
        size_t k = 0;

        for (; k < max && t[k].name[0]; k++)
                if (strcmp(t[k].name, name) == 0)
                        return &t[k];
        if (k == max)
                return NULL;
        snprintf(t[k].name, sizeof(t[k].name), "%s", name);
        t[k].r = local_gid(group_file, name, &t[k].gid);
        if (t[k].r == -ENOENT)
                t[k].r = snapshot_gid(snapshot_path, name, &t[k].gid);
        for (size_t j = 0; t[k].r == 0 && j < k; j++)
                if (t[j].r == 0 && t[j].gid == t[k].gid)
                        t[k].r = -EEXIST;
        return &t[k];
}

struct grant_names {
        char group[PHI_NAME_MAX + 1], user[PHI_NAME_MAX + 1];
};

int phi_grants_publish_active_at(const char *snapshot_path, uint64_t min_gid, const struct phi_elev_ctx *ctx,
                                 struct phi_grants_publish_stats *ret_stats) {
        enum { PAGE = 256 };
        _cleanup_free_ struct phi_grant_entry *e = NULL;
        _cleanup_free_ struct grant_names *names = NULL;   /* the strings e points to */
        struct group_gid groups[PHI_POLICY_MAX_ROLES] = { 0 };
        struct phi_grants_publish_stats st = { 0 };
        const char *group_file = ctx->group_file && *ctx->group_file ? ctx->group_file : "/etc/group";
        char path[PATH_MAX];
        char after[PHI_REQUEST_ID_LEN + 1] = "";
        size_t n = 0, cap = 0;
        int r;

        if (min_gid == 0 || min_gid >= UINT32_MAX)
                return -EINVAL;
        if ((r = phi_grants_path_for(snapshot_path, path, sizeof(path))) < 0)
                return r;
        for (;;) {
                struct phi_elev_request *v = NULL;
                size_t got = 0;

                if ((r = phi_store_elev_list(ctx->store, PHI_ELEV_MASK(PHI_ELEV_ACTIVE), "", after, PAGE, &v,
                                             &got)) < 0)
                        return r;
                if (got == 0) {
                        free(v);
                        break;
                }
                snprintf(after, sizeof(after), "%s", v[got - 1].id);
                for (size_t i = 0; i < got; i++) {
                        const struct phi_elev_request *q = &v[i];
                        const struct phi_policy_role *role =
                                ctx->policy ? phi_policy_role_find(ctx->policy, q->role) : NULL;
                        const struct group_gid *g;
                        uint64_t id;
                        char *end = NULL;

                        /* What phi_elev_user_has_grant() counts as in force here. */
                        if (q->expires <= ctx->now || !role || !phi_policy_role_covers_host(role, ctx->host))
                                continue;
                        if (n >= PHI_GRANTS_MAX) {
                                st.over++;
                                continue;
                        }
                        g = group_gid(groups, PHI_ELEMENTSOF(groups), snapshot_path, group_file, q->grant_group);
                        if (!g || (g->r < 0 && g->r != -EEXIST)) {
                                st.no_gid++;
                                continue;
                        }
                        errno = 0;
                        id = strtoull(q->id, &end, 16);
                        if (g->r < 0 || g->gid == 0 || g->gid == (gid_t) -1 || g->gid < min_gid ||
                            !phi_name_valid(q->requester) || strcmp(q->requester, "root") == 0 ||
                            !phi_name_valid(q->grant_group) || strcmp(q->grant_group, "root") == 0 ||
                            errno != 0 || !end || end == q->id || *end != '\0') {
                                st.refused++;
                                continue;
                        }
                        if (n == cap) {
                                size_t nc = cap ? cap * 2 : 64;
                                struct phi_grant_entry *ne = reallocarray(e, nc, sizeof(*e));
                                struct grant_names *nn;
                                if (ne)
                                        e = ne;
                                nn = ne ? reallocarray(names, nc, sizeof(*names)) : NULL;
                                if (!nn) {
                                        free(v);
                                        return -ENOMEM;
                                }
                                names = nn;
                                cap = nc;
                        }
                        snprintf(names[n].group, sizeof(names[n].group), "%s", q->grant_group);
                        snprintf(names[n].user, sizeof(names[n].user), "%s", q->requester);
                        e[n] = (struct phi_grant_entry) { .gid = g->gid, .expires = q->expires, .request_id = id };
                        n++;
                }
                free(v);
        }
        /* Pointers last: names may have moved while it grew. */
        for (size_t i = 0; i < n; i++) {
                e[i].group = names[i].group;
                e[i].user = names[i].user;
        }
        st.published = n;
        st.generation = next_generation();
        r = publish_or_withdraw(path, e, n, (gid_t) min_gid, st.generation);
        if (r >= 0 && ret_stats)
                *ret_stats = st;
        return r;
}

int phi_grants_publish_active(const struct phi_config *c, const struct phi_elev_ctx *ctx,
                              struct phi_grants_publish_stats *ret_stats) {
        struct phi_elev_ctx with = *ctx;

        if (!with.group_file || !*with.group_file)
                with.group_file = c->group_file;
        return phi_grants_publish_active_at(c->snapshot_path ? c->snapshot_path : PHI_SNAPSHOT_PATH, c->min_gid,
                                            &with, ret_stats);
}

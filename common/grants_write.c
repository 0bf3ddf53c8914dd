/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The grants snapshot writer: validates the daemon's list of grants, lays it
 * out in the format of phi/grants_format.h and replaces the file atomically
 * (phi/published.h). Runs in phiaccessd only. */

#include <endian.h>
#include <stdio.h>
#include <time.h>

#include "phi/grants.h"
#include "phi/parse.h"
#include "phi/published.h"

static const struct phi_published_format grants_format = {
        .magic = PHI_GRANTS_MAGIC,
        .magic_size = PHI_GRANTS_MAGIC_SIZE,
        .superseded_offset = PHI_GRANTS_SUPERSEDED_OFFSET,
        .header_size = PHI_GRANTS_HEADER_SIZE,
};

int phi_grants_path_for(const char *snapshot_path, char *buf, size_t size) {
        const char *slash = strrchr(snapshot_path, '/');
        int n;

        if (!*snapshot_path)
                return -EINVAL;
        if (!slash)
                n = snprintf(buf, size, "%s", PHI_GRANTS_FILE_NAME);
        else
                n = snprintf(buf, size, "%.*s/%s", (int) (slash - snapshot_path), snapshot_path,
                             PHI_GRANTS_FILE_NAME);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

static bool name_ok(const char *s) {
        return phi_name_valid(s) && strcmp(s, "root") != 0;
}

struct sort_ctx {
        const struct phi_grant_entry *e;
        const uint32_t *order;    /* grant index -> entry */
        const uint32_t *gids;     /* group index -> gid */
};

/* Grants in file order: by group name, then user name, then request id. */
static int cmp_grant(const void *a, const void *b, void *ctx) {
        const struct phi_grant_entry *e = ((const struct sort_ctx *) ctx)->e,
                                     *x = &e[*(const uint32_t *) a], *y = &e[*(const uint32_t *) b];
        int c = strcmp(x->group, y->group);

        if (c == 0)
                c = strcmp(x->user, y->user);
        if (c == 0)
                c = x->request_id < y->request_id ? -1 : x->request_id > y->request_id;
        return c;
}

/* byuser: grant indexes by user name, then grant index. */
static int cmp_byuser(const void *a, const void *b, void *ctx) {
        const struct sort_ctx *c = ctx;
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        int r = strcmp(c->e[c->order[x]].user, c->e[c->order[y]].user);

        return r != 0 ? r : (x > y) - (x < y);
}

static int cmp_bygid(const void *a, const void *b, void *ctx) {
        const struct sort_ctx *c = ctx;
        uint32_t x = c->gids[*(const uint32_t *) a], y = c->gids[*(const uint32_t *) b];

        return (x > y) - (x < y);
}

static uint64_t align8(uint64_t v) {
        return (v + 7) & ~(uint64_t) 7;
}

/* Appends s to the strings section (which starts right after the header) and
 * returns its file offset. The caller sized the section for every name. */
static uint32_t put_string(uint8_t *out, size_t *len, const char *s) {
        size_t n = strlen(s);
        uint16_t le = htole16((uint16_t) n);
        uint32_t ref = (uint32_t) (PHI_GRANTS_HEADER_SIZE + *len);

        memcpy(out + ref, &le, sizeof(le));
        memcpy(out + ref + 2, s, n);
        out[ref + 2 + n] = 0;
        *len += n + 3;
        return ref;
}

int phi_grants_encode(const struct phi_grant_entry *e, size_t n, gid_t min_gid, uint64_t generation,
                      uint64_t created, uint8_t **ret_data, size_t *ret_size) {
        _cleanup_free_ uint32_t *order = NULL, *group_of = NULL, *group_first = NULL, *gids = NULL,
                                *byuser = NULL, *bygid = NULL, *user_first = NULL,
                                *user_of_slot = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        struct phi_grants_header h = { 0 };
        uint64_t size[PHI_GRANTS_SECTION_COUNT] = { 0 }, off = PHI_GRANTS_HEADER_SIZE;
        uint32_t n_groups = 0, n_users = 0;
        size_t strings = 0, slen = 0;
        struct sort_ctx sc;

        if (n > PHI_GRANTS_MAX)
                return -E2BIG;
        if (min_gid == 0 || min_gid == (gid_t) -1 || (n > 0 && !e))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!e[i].group || !e[i].user || !name_ok(e[i].group) || !name_ok(e[i].user) ||
                    e[i].gid == 0 || e[i].gid == (gid_t) -1 || e[i].gid < min_gid ||
                    e[i].expires == 0)
                        return -EINVAL;

        order = calloc(n + 1, sizeof(uint32_t));
        group_of = calloc(n + 1, sizeof(uint32_t));
        group_first = calloc(n + 2, sizeof(uint32_t));
        gids = calloc(n + 1, sizeof(uint32_t));
        byuser = calloc(n + 1, sizeof(uint32_t));
        bygid = calloc(n + 1, sizeof(uint32_t));
        user_first = calloc(n + 2, sizeof(uint32_t));
        user_of_slot = calloc(n + 1, sizeof(uint32_t));
        if (!order || !group_of || !group_first || !gids || !byuser || !bygid || !user_first ||
            !user_of_slot)
                return -ENOMEM;
        sc = (struct sort_ctx) { .e = e, .order = order, .gids = gids };
        for (uint32_t i = 0; i < n; i++)
                order[i] = i;
        qsort_r(order, n, sizeof(*order), cmp_grant, &sc);

        /* Groups are the runs of one name; a name keeps one gid. */
        for (uint32_t k = 0; k < n; k++) {
                const struct phi_grant_entry *x = &e[order[k]];
                if (k > 0) {
                        const struct phi_grant_entry *p = &e[order[k - 1]];
                        if (cmp_grant(&order[k - 1], &order[k], &sc) == 0)
                                return -EEXIST;
                        if (strcmp(p->group, x->group) == 0) {
                                if (p->gid != x->gid)
                                        return -EINVAL;
                                group_of[k] = n_groups - 1;
                                continue;
                        }
                }
                group_first[n_groups] = k;
                gids[n_groups] = x->gid;
                strings += strlen(x->group) + 3;
                group_of[k] = n_groups++;
        }
        group_first[n_groups] = (uint32_t) n;

        /* ... and a gid one name. */
        for (uint32_t j = 0; j < n_groups; j++)
                bygid[j] = j;
        qsort_r(bygid, n_groups, sizeof(*bygid), cmp_bygid, &sc);
        for (uint32_t j = 1; j < n_groups; j++)
                if (gids[bygid[j]] == gids[bygid[j - 1]])
                        return -EINVAL;

        /* Users: runs of one name in the byuser order. */
        for (uint32_t k = 0; k < n; k++)
                byuser[k] = k;
        qsort_r(byuser, n, sizeof(*byuser), cmp_byuser, &sc);
        for (uint32_t k = 0; k < n; k++) {
                if (k == 0 || strcmp(e[order[byuser[k - 1]]].user, e[order[byuser[k]]].user) != 0) {
                        user_first[n_users++] = k;
                        strings += strlen(e[order[byuser[k]]].user) + 3;
                }
                user_of_slot[k] = n_users - 1;
        }
        user_first[n_users] = (uint32_t) n;

        size[PHI_GRANTS_STRINGS] = strings;
        size[PHI_GRANTS_GROUPS] = (uint64_t) n_groups * sizeof(struct phi_grants_group);
        size[PHI_GRANTS_GRANTS] = (uint64_t) n * sizeof(struct phi_grants_grant);
        size[PHI_GRANTS_USERS] = (uint64_t) n_users * sizeof(struct phi_grants_user);
        size[PHI_GRANTS_BYUSER] = (uint64_t) n * sizeof(uint32_t);
        size[PHI_GRANTS_BYGID] = (uint64_t) n_groups * sizeof(uint32_t);
        for (int s = 0; s < PHI_GRANTS_SECTION_COUNT; s++) {
                h.sections[s].offset = htole64(off);
                h.sections[s].size = htole64(size[s]);
                off = align8(off + size[s]);
        }
        if (off > PHI_GRANTS_MAX_FILE)
                return -E2BIG;
        out = calloc(1, off);
        if (!out)
                return -ENOMEM;

#define SECTION(s) (out + le64toh(h.sections[s].offset))
        {
                _cleanup_free_ uint32_t *user_ref = calloc(n_users + 1, sizeof(uint32_t));
                if (!user_ref)
                        return -ENOMEM;
                for (uint32_t j = 0; j < n_groups; j++) {
                        struct phi_grants_group rec = {
                                htole32(put_string(out, &slen, e[order[group_first[j]]].group)),
                                htole32(gids[j]), htole32(group_first[j]),
                                htole32(group_first[j + 1] - group_first[j]),
                        };
                        memcpy(SECTION(PHI_GRANTS_GROUPS) + (size_t) j * sizeof(rec), &rec, sizeof(rec));
                        uint32_t le = htole32(bygid[j]);
                        memcpy(SECTION(PHI_GRANTS_BYGID) + (size_t) j * sizeof(le), &le, sizeof(le));
                }
                for (uint32_t u = 0; u < n_users; u++) {
                        struct phi_grants_user rec;
                        user_ref[u] = put_string(out, &slen, e[order[byuser[user_first[u]]]].user);
                        rec = (struct phi_grants_user) { htole32(user_ref[u]), htole32(user_first[u]),
                                                         htole32(user_first[u + 1] - user_first[u]), 0 };
                        memcpy(SECTION(PHI_GRANTS_USERS) + (size_t) u * sizeof(rec), &rec, sizeof(rec));
                }
                for (uint32_t k = 0; k < n; k++) {
                        uint32_t g = byuser[k], le = htole32(g);
                        const struct phi_grant_entry *x = &e[order[g]];
                        struct phi_grants_grant rec = { htole32(user_ref[user_of_slot[k]]),
                                                        htole32(group_of[g]), htole64(x->expires),
                                                        htole64(x->request_id) };
                        memcpy(SECTION(PHI_GRANTS_GRANTS) + (size_t) g * sizeof(rec), &rec, sizeof(rec));
                        memcpy(SECTION(PHI_GRANTS_BYUSER) + (size_t) k * sizeof(le), &le, sizeof(le));
                }
        }
#undef SECTION

        memcpy(h.magic, PHI_GRANTS_MAGIC, PHI_GRANTS_MAGIC_SIZE);
        h.version = htole32(PHI_GRANTS_VERSION);
        h.header_size = htole32(PHI_GRANTS_HEADER_SIZE);
        h.generation = htole64(generation);
        h.created = htole64(created);
        h.file_size = htole64(off);
        h.min_gid = htole32(min_gid);
        h.n_grants = htole32((uint32_t) n);
        h.n_groups = htole32(n_groups);
        h.n_users = htole32(n_users);
        h.body_checksum = htole64(phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, out + PHI_GRANTS_HEADER_SIZE,
                                                   off - PHI_GRANTS_HEADER_SIZE));
        h.header_checksum = htole64(phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, &h, sizeof(h)));
        memcpy(out, &h, sizeof(h));

        *ret_data = PHI_TAKE_PTR(out);
        *ret_size = off;
        return 0;
}

int phi_grants_write(const char *path, const struct phi_grant_entry *entries, size_t n,
                     gid_t min_gid, uint64_t generation) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        int r;

        r = phi_grants_encode(entries, n, min_gid, generation, (uint64_t) time(NULL), &data, &size);
        if (r < 0)
                return r;
        return phi_published_write(path, data, size, &grants_format);
}

int phi_grants_remove(const char *path) {
        return phi_published_remove(path, &grants_format);
}

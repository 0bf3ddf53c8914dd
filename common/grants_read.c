/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The grants snapshot reader (format in phi/grants_format.h). Runs inside
 * every process that resolves a group, so: no allocation, no system call but
 * in phi_grants_map(), no lock. The whole file is verified when it is opened,
 * so that a corrupt file serves no grant at all; lookups check every index and
 * offset again before use, since the mapping is not trusted to hold still. */

#include <endian.h>

#include "phi/grants.h"
#include "phi/parse.h"
#include "phi/published.h"

static uint16_t rd16(const uint8_t *p) {
        uint16_t v;
        memcpy(&v, p, sizeof(v));
        return le16toh(v);
}

static uint32_t rd32(const uint8_t *p) {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return le32toh(v);
}

static int str_at(const phi_grants *g, uint32_t ref, struct phi_snapshot_str *ret) {
        uint64_t start = g->off[PHI_GRANTS_STRINGS], end = start + g->len[PHI_GRANTS_STRINGS];
        uint16_t len;

        if (ref < start || (uint64_t) ref + 2 > end)
                return -EBADMSG;
        len = rd16(g->data + ref);
        if (len == 0 || len > PHI_NAME_MAX || (uint64_t) ref + 2 + len + 1 > end ||
            g->data[(size_t) ref + 2 + len] != 0)
                return -EBADMSG;
        ret->s = (const char *) g->data + ref + 2;
        ret->len = len;
        return 0;
}

static const uint8_t *record(const phi_grants *g, int section, uint64_t index, size_t size) {
        if ((index + 1) * size > g->len[section])
                return NULL;
        return g->data + g->off[section] + index * size;
}

/* Bytewise, a shorter prefix first: strcmp()'s order for names without NUL. */
static int name_cmp(const char *a, size_t alen, const char *b, size_t blen) {
        int c = memcmp(a, b, alen < blen ? alen : blen);

        return c != 0 ? c : (alen > blen) - (alen < blen);
}

static int str_cmp(const struct phi_snapshot_str *a, const struct phi_snapshot_str *b) {
        return name_cmp(a->s, a->len, b->s, b->len);
}

int phi_grants_group_at(const phi_grants *g, uint32_t index, struct phi_grants_group_view *ret) {
        struct phi_grants_group_view v = { .index = index };
        struct phi_grants_group rec;
        const uint8_t *p;

        if (index >= g->n_groups)
                return -ENOENT;
        p = record(g, PHI_GRANTS_GROUPS, index, sizeof(rec));
        if (!p)
                return -EBADMSG;
        memcpy(&rec, p, sizeof(rec));
        v.gid = le32toh(rec.gid);
        v.first = le32toh(rec.first);
        v.count = le32toh(rec.count);
        if (str_at(g, le32toh(rec.name), &v.name) < 0 || v.count == 0 ||
            (uint64_t) v.first + v.count > g->n_grants)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int grant_at(const phi_grants *g, uint32_t index, struct phi_grant_view *ret) {
        struct phi_grant_view v = { .index = index };
        struct phi_grants_grant rec;
        const uint8_t *p;

        if (index >= g->n_grants)
                return -EBADMSG;
        p = record(g, PHI_GRANTS_GRANTS, index, sizeof(rec));
        if (!p)
                return -EBADMSG;
        memcpy(&rec, p, sizeof(rec));
        v.group = le32toh(rec.group);
        v.expires = le64toh(rec.expires);
        v.request_id = le64toh(rec.request_id);
        if (str_at(g, le32toh(rec.user), &v.user) < 0 || v.group >= g->n_groups || v.expires == 0)
                return -EBADMSG;
        *ret = v;
        return 0;
}

int phi_grants_group_grant(const phi_grants *g, const struct phi_grants_group_view *gr, uint32_t i,
                           struct phi_grant_view *ret) {
        struct phi_grant_view v;
        int r;

        if (i >= gr->count)
                return -ENOENT;
        if ((r = grant_at(g, gr->first + i, &v)) < 0)
                return r;
        if (v.group != gr->index)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int user_at(const phi_grants *g, uint32_t index, struct phi_grants_user_view *ret) {
        struct phi_grants_user_view v = { .index = index };
        struct phi_grants_user rec;
        const uint8_t *p;

        if (index >= g->n_users)
                return -ENOENT;
        p = record(g, PHI_GRANTS_USERS, index, sizeof(rec));
        if (!p)
                return -EBADMSG;
        memcpy(&rec, p, sizeof(rec));
        v.first = le32toh(rec.first);
        v.count = le32toh(rec.count);
        if (str_at(g, le32toh(rec.name), &v.name) < 0 || v.count == 0 || rec.reserved != 0 ||
            (uint64_t) v.first + v.count > g->n_grants)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int byuser_at(const phi_grants *g, uint64_t k, uint32_t *ret) {
        const uint8_t *p = record(g, PHI_GRANTS_BYUSER, k, sizeof(uint32_t));

        if (!p)
                return -EBADMSG;
        *ret = rd32(p);
        return *ret < g->n_grants ? 0 : -EBADMSG;
}

static int bygid_at(const phi_grants *g, uint64_t k, uint32_t *ret) {
        const uint8_t *p = record(g, PHI_GRANTS_BYGID, k, sizeof(uint32_t));

        if (!p)
                return -EBADMSG;
        *ret = rd32(p);
        return *ret < g->n_groups ? 0 : -EBADMSG;
}

int phi_grants_user_grant(const phi_grants *g, const struct phi_grants_user_view *u, uint32_t i,
                          struct phi_grant_view *ret) {
        struct phi_grant_view v;
        uint32_t index;
        int r;

        if (i >= u->count)
                return -ENOENT;
        if ((r = byuser_at(g, (uint64_t) u->first + i, &index)) < 0 || (r = grant_at(g, index, &v)) < 0)
                return r;
        if (str_cmp(&v.user, &u->name) != 0)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* ---- lookups: binary searches over sorted sections ---- */

/* A name longer than any stored one cannot match; never read unbounded input. */
static int name_key(const char *name, size_t *ret_len) {
        size_t len = strnlen(name, PHI_NAME_MAX + 1);

        if (len == 0 || len > PHI_NAME_MAX)
                return -ENOENT;
        *ret_len = len;
        return 0;
}

int phi_grants_group_by_name(const phi_grants *g, const char *name, struct phi_grants_group_view *ret) {
        uint32_t lo = 0, hi = g->n_groups;
        size_t len;

        if (name_key(name, &len) < 0)
                return -ENOENT;
        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                struct phi_grants_group_view v;
                int r = phi_grants_group_at(g, mid, &v), c;

                if (r < 0)
                        return r;
                c = name_cmp(v.name.s, v.name.len, name, len);
                if (c == 0) {
                        *ret = v;
                        return 0;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -ENOENT;
}

int phi_grants_group_by_gid(const phi_grants *g, gid_t gid, struct phi_grants_group_view *ret) {
        uint32_t lo = 0, hi = g->n_groups;

        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2, index;
                struct phi_grants_group_view v;
                int r;

                if ((r = bygid_at(g, mid, &index)) < 0 || (r = phi_grants_group_at(g, index, &v)) < 0)
                        return r;
                if (v.gid == gid) {
                        *ret = v;
                        return 0;
                }
                if (v.gid < gid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -ENOENT;
}

int phi_grants_user_by_name(const phi_grants *g, const char *name, struct phi_grants_user_view *ret) {
        uint32_t lo = 0, hi = g->n_users;
        size_t len;

        if (name_key(name, &len) < 0)
                return -ENOENT;
        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                struct phi_grants_user_view v;
                int r = user_at(g, mid, &v), c;

                if (r < 0)
                        return r;
                c = name_cmp(v.name.s, v.name.len, name, len);
                if (c == 0) {
                        *ret = v;
                        return 0;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -ENOENT;
}

/* ---- opening: the whole file is checked ---- */

/* A stored name as nss_phi would serve it: a valid name (which also rules out
 * a NUL inside), never root. */
static bool name_served(const struct phi_snapshot_str *s) {
        char copy[PHI_NAME_MAX + 1];

        if (s->len > PHI_NAME_MAX)
                return false;
        memcpy(copy, s->s, s->len);
        copy[s->len] = '\0';
        return strlen(copy) == s->len && phi_name_valid(copy) && strcmp(copy, "root") != 0;
}

static int verify(const phi_grants *g) {
        struct phi_grants_group_view prev_group = { 0 };
        struct phi_grants_user_view prev_user = { 0 };
        uint32_t next = 0, prev_gid = 0;
        int r;

        /* Groups: ascending names, valid gids, slices in order covering every
         * grant; each grant in a slice names that group, ascending by (user,
         * request id). */
        for (uint32_t j = 0; j < g->n_groups; j++) {
                struct phi_grants_group_view v;
                struct phi_grant_view prev = { 0 };

                if ((r = phi_grants_group_at(g, j, &v)) < 0)
                        return r;
                if (!name_served(&v.name) || v.gid == 0 || v.gid == (gid_t) -1 || v.gid < g->min_gid ||
                    v.first != next || (j > 0 && str_cmp(&prev_group.name, &v.name) >= 0))
                        return -EBADMSG;
                for (uint32_t k = 0; k < v.count; k++) {
                        struct phi_grant_view gr;
                        int c;
                        if ((r = phi_grants_group_grant(g, &v, k, &gr)) < 0)
                                return r;
                        if (!name_served(&gr.user))
                                return -EBADMSG;
                        c = k > 0 ? str_cmp(&prev.user, &gr.user) : -1;
                        if (c > 0 || (c == 0 && prev.request_id >= gr.request_id))
                                return -EBADMSG;
                        prev = gr;
                }
                next = v.first + v.count;
                prev_group = v;
        }
        if (next != g->n_grants)
                return -EBADMSG;

        /* bygid: every group once, ascending gid (strictly, so one gid is one
         * group and, with the count, every group is listed). */
        for (uint32_t j = 0; j < g->n_groups; j++) {
                struct phi_grants_group_view v;
                uint32_t index;
                if ((r = bygid_at(g, j, &index)) < 0 || (r = phi_grants_group_at(g, index, &v)) < 0)
                        return r;
                if (j > 0 && v.gid <= prev_gid)
                        return -EBADMSG;
                prev_gid = v.gid;
        }

        /* Users: ascending names, slices in order covering byuser; each slice
         * lists grants of that name in ascending index order. Names are
         * distinct and indexes ascend inside a slice, so no grant appears
         * twice; n_grants entries in all, so each grant appears once. */
        next = 0;
        for (uint32_t u = 0; u < g->n_users; u++) {
                struct phi_grants_user_view v;
                uint32_t prev_index = 0;

                if ((r = user_at(g, u, &v)) < 0)
                        return r;
                if (!name_served(&v.name) || v.first != next ||
                    (u > 0 && str_cmp(&prev_user.name, &v.name) >= 0))
                        return -EBADMSG;
                for (uint32_t k = 0; k < v.count; k++) {
                        struct phi_grant_view gr;
                        if ((r = phi_grants_user_grant(g, &v, k, &gr)) < 0)
                                return r;
                        if (k > 0 && gr.index <= prev_index)
                                return -EBADMSG;
                        prev_index = gr.index;
                }
                next = v.first + v.count;
                prev_user = v;
        }
        return next == g->n_grants ? 0 : -EBADMSG;
}

int phi_grants_open_buffer(phi_grants *g, const void *data, size_t size) {
        static const size_t record_size[PHI_GRANTS_SECTION_COUNT] = {
                [PHI_GRANTS_STRINGS] = 1,
                [PHI_GRANTS_GROUPS] = sizeof(struct phi_grants_group),
                [PHI_GRANTS_GRANTS] = sizeof(struct phi_grants_grant),
                [PHI_GRANTS_USERS] = sizeof(struct phi_grants_user),
                [PHI_GRANTS_BYUSER] = sizeof(uint32_t),
                [PHI_GRANTS_BYGID] = sizeof(uint32_t),
        };
        static const uint8_t zero[sizeof(((struct phi_grants_header *) 0)->reserved)];
        struct phi_grants_header h;
        phi_grants out = { .data = data, .size = size };
        uint64_t count[PHI_GRANTS_SECTION_COUNT], end = PHI_GRANTS_HEADER_SIZE, sum;
        int r;

        if (!data || size < offsetof(struct phi_grants_header, header_size))
                return -EBADMSG;
        memcpy(&h, data, offsetof(struct phi_grants_header, header_size));
        if (memcmp(h.magic, PHI_GRANTS_MAGIC, PHI_GRANTS_MAGIC_SIZE) != 0)
                return -EBADMSG;
        if (le32toh(h.version) != PHI_GRANTS_VERSION)
                return -EPROTONOSUPPORT;
        if (size < sizeof(h) || size > PHI_GRANTS_MAX_FILE)
                return -EBADMSG;
        memcpy(&h, data, sizeof(h));
        sum = le64toh(h.header_checksum);
        h.superseded = 0;
        h.header_checksum = 0;
        if (le32toh(h.header_size) != PHI_GRANTS_HEADER_SIZE ||
            phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, &h, sizeof(h)) != sum ||
            le64toh(h.file_size) != size || h.flags != 0 || memcmp(h.reserved, zero, sizeof(zero)) != 0 ||
            phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, (const uint8_t *) data + PHI_GRANTS_HEADER_SIZE,
                             size - PHI_GRANTS_HEADER_SIZE) != le64toh(h.body_checksum))
                return -EBADMSG;

        out.generation = le64toh(h.generation);
        out.created = le64toh(h.created);
        out.min_gid = le32toh(h.min_gid);
        out.n_grants = le32toh(h.n_grants);
        out.n_groups = le32toh(h.n_groups);
        out.n_users = le32toh(h.n_users);
        if (out.min_gid == 0 || out.min_gid == UINT32_MAX || out.n_grants > PHI_GRANTS_MAX ||
            out.n_groups > out.n_grants || out.n_users > out.n_grants)
                return -EBADMSG;
        for (int i = 0; i < PHI_GRANTS_SECTION_COUNT; i++) {
                uint64_t off = le64toh(h.sections[i].offset), len = le64toh(h.sections[i].size);
                if (off % 8 != 0 || off < end || off > size || len > size - off ||
                    len % record_size[i] != 0)
                        return -EBADMSG;
                out.off[i] = off;
                out.len[i] = len;
                count[i] = len / record_size[i];
                end = off + len;
        }
        if (count[PHI_GRANTS_GROUPS] != out.n_groups || count[PHI_GRANTS_GRANTS] != out.n_grants ||
            count[PHI_GRANTS_USERS] != out.n_users || count[PHI_GRANTS_BYUSER] != out.n_grants ||
            count[PHI_GRANTS_BYGID] != out.n_groups)
                return -EBADMSG;
        if ((r = verify(&out)) < 0)
                return r;
        *g = out;
        return 0;
}

bool phi_grants_superseded(const phi_grants *g) {
        return phi_published_superseded(g->data, PHI_GRANTS_SUPERSEDED_OFFSET);
}

int phi_grants_map(const char *path, phi_grants *ret, dev_t *ret_dev, ino_t *ret_ino) {
        const uint8_t *data = NULL;
        size_t size = 0;
        int r;

        r = phi_published_map(path, PHI_GRANTS_HEADER_SIZE, PHI_GRANTS_MAX_FILE, &data, &size, ret_dev,
                              ret_ino);
        if (r < 0)
                return r;
        r = phi_grants_open_buffer(ret, data, size);
        if (r < 0)
                phi_published_unmap(data, size);
        return r;
}

void phi_grants_unmap(phi_grants *g) {
        if (g && g->data) {
                phi_published_unmap(g->data, g->size);
                g->data = NULL;
                g->size = 0;
        }
}

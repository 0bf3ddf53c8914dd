/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The snapshot reader: lookups over an encoded snapshot in memory (format in
 * phi/snapshot_format.h). Runs inside every process that resolves a name, so:
 * no allocation, no system call, no lock, and no read that has not been
 * bounds-checked first. Records are copied out of the file before their fields
 * are looked at, then validated, so a hostile file can make a lookup fail but
 * never read outside the snapshot. */

#include <endian.h>

#include "phi/published.h"
#include "phi/snapshot.h"

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

static uint64_t rd64(const uint8_t *p) {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return le64toh(v);
}

static bool is_pow2(uint64_t v) {
        return v != 0 && (v & (v - 1)) == 0;
}

int phi_snapshot_open_buffer(phi_snapshot *s, const void *data, size_t size) {
        static const size_t record_size[PHI_SNAP_SECTION_COUNT] = {
                [PHI_SNAP_STRINGS] = 1,
                [PHI_SNAP_USERS] = sizeof(struct phi_snap_user),
                [PHI_SNAP_GROUPS] = sizeof(struct phi_snap_group),
                [PHI_SNAP_MEMBERS] = sizeof(struct phi_snap_member),
                [PHI_SNAP_MEMBEROF] = sizeof(struct phi_snap_memberof),
                [PHI_SNAP_GROUPLIST] = sizeof(struct phi_snap_grouplist),
                [PHI_SNAP_IDX_USER_NAME] = sizeof(struct phi_snap_slot),
                [PHI_SNAP_IDX_UID] = sizeof(struct phi_snap_slot),
                [PHI_SNAP_IDX_GROUP_NAME] = sizeof(struct phi_snap_slot),
                [PHI_SNAP_IDX_GID] = sizeof(struct phi_snap_slot),
                [PHI_SNAP_IDX_MEMBEROF_NAME] = sizeof(struct phi_snap_slot),
        };
        struct phi_snap_header h;
        phi_snapshot out = { .data = data, .size = size };
        uint64_t count[PHI_SNAP_SECTION_COUNT], end = PHI_SNAP_HEADER_SIZE, sum;
        static const uint8_t zero[sizeof(h.reserved)];

        /* Magic and version first: a file of another version (whose header may
         * be shorter) is "not supported", not "corrupt". */
        if (!data || size < offsetof(struct phi_snap_header, header_size))
                return -EBADMSG;
        memcpy(&h, data, offsetof(struct phi_snap_header, header_size));
        if (memcmp(h.magic, PHI_SNAP_MAGIC, PHI_SNAP_MAGIC_SIZE) != 0)
                return -EBADMSG;
        if (le32toh(h.version) != PHI_SNAP_VERSION)
                return -EPROTONOSUPPORT;
        if (size < sizeof(h))
                return -EBADMSG;
        memcpy(&h, data, sizeof(h));
        sum = le64toh(h.header_checksum);
        h.superseded = 0;
        h.header_checksum = 0;
        if (le32toh(h.header_size) != PHI_SNAP_HEADER_SIZE ||
            phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, &h, sizeof(h)) != sum ||
            le64toh(h.file_size) != size || size > PHI_SNAP_MAX_FILE || h.flags != 0 ||
            memcmp(h.reserved, zero, sizeof(zero)) != 0)
                return -EBADMSG;

        out.generation = le64toh(h.generation);
        out.created = le64toh(h.created);
        out.min_uid = le32toh(h.min_uid);
        out.min_gid = le32toh(h.min_gid);
        out.hash_seed = le32toh(h.hash_seed);
        out.n_users = le32toh(h.n_users);
        out.n_groups = le32toh(h.n_groups);
        out.n_members = le32toh(h.n_members);
        out.n_memberof = le32toh(h.n_memberof);
        out.n_grouplist = le32toh(h.n_grouplist);
        if (out.min_uid == 0 || out.min_gid == 0 || out.n_users > PHI_SNAP_MAX_RECORDS ||
            out.n_groups > PHI_SNAP_MAX_RECORDS || out.n_memberof > PHI_SNAP_MAX_RECORDS ||
            out.n_members > PHI_SNAP_MAX_MEMBERS || out.n_grouplist > PHI_SNAP_MAX_MEMBERS)
                return -EBADMSG;

        /* The low primary gids: each non-zero, below min_gid, listed once; the
         * unused tail zero. */
        out.n_primary_gids = le32toh(h.n_primary_gids);
        if (out.n_primary_gids > PHI_SNAP_MAX_PRIMARY_GIDS)
                return -EBADMSG;
        for (uint32_t i = 0; i < PHI_SNAP_MAX_PRIMARY_GIDS; i++) {
                uint32_t gid = le32toh(h.primary_gids[i]);
                if (i >= out.n_primary_gids) {
                        if (gid != 0)
                                return -EBADMSG;
                        continue;
                }
                if (gid == 0 || gid >= out.min_gid)
                        return -EBADMSG;
                for (uint32_t k = 0; k < i; k++)
                        if (out.primary_gids[k] == gid)
                                return -EBADMSG;
                out.primary_gids[i] = gid;
        }

        /* Sections in order, aligned, each inside the file after the previous one. */
        for (int i = 0; i < PHI_SNAP_SECTION_COUNT; i++) {
                uint64_t off = le64toh(h.sections[i].offset), len = le64toh(h.sections[i].size);
                if (off % 8 != 0 || off < end || off > size || len > size - off ||
                    len % record_size[i] != 0)
                        return -EBADMSG;
                out.off[i] = off;
                out.len[i] = len;
                count[i] = len / record_size[i];
                end = off + len;
        }
        if (count[PHI_SNAP_USERS] != out.n_users || count[PHI_SNAP_GROUPS] != out.n_groups ||
            count[PHI_SNAP_MEMBERS] != out.n_members || count[PHI_SNAP_MEMBEROF] != out.n_memberof ||
            count[PHI_SNAP_GROUPLIST] != out.n_grouplist)
                return -EBADMSG;
        for (int i = PHI_SNAP_IDX_USER_NAME; i < PHI_SNAP_SECTION_COUNT; i++)
                if (!is_pow2(count[i]) || count[i] < PHI_SNAP_MIN_SLOTS)
                        return -EBADMSG;

        *s = out;
        return 0;
}

bool phi_snapshot_superseded(const phi_snapshot *s) {
        return phi_published_superseded(s->data, PHI_SNAP_SUPERSEDED_OFFSET);
}

bool phi_snapshot_primary_gid_allowed(const phi_snapshot *s, gid_t gid) {
        if (gid == 0 || gid == (gid_t) -1)
                return false;
        if (gid >= s->min_gid)
                return true;
        for (uint32_t i = 0; i < s->n_primary_gids && i < PHI_SNAP_MAX_PRIMARY_GIDS; i++)
                if (s->primary_gids[i] == gid)
                        return true;
        return false;
}

/* ---- checked access ---- */

static int str_at(const phi_snapshot *s, uint32_t ref, struct phi_snapshot_str *ret) {
        uint64_t start = s->off[PHI_SNAP_STRINGS], end = start + s->len[PHI_SNAP_STRINGS];
        uint16_t len;

        if (ref < start || (uint64_t) ref + 2 > end)
                return -EBADMSG;
        len = rd16(s->data + ref);
        if (len > PHI_SNAP_STR_MAX || (uint64_t) ref + 2 + len + 1 > end ||
            s->data[(size_t) ref + 2 + len] != 0)
                return -EBADMSG;
        ret->s = (const char *) s->data + ref + 2;
        ret->len = len;
        return 0;
}

static const uint8_t *record(const phi_snapshot *s, int section, uint64_t index, size_t size) {
        /* Callers check index against the section's count; this keeps the
         * arithmetic honest for any count open_buffer() accepted. */
        if ((index + 1) * size > s->len[section])
                return NULL;
        return s->data + s->off[section] + index * size;
}

static bool str_eq(const struct phi_snapshot_str *a, const char *b, size_t blen) {
        return a->len == blen && memcmp(a->s, b, blen) == 0;
}

int phi_snapshot_user_at(const phi_snapshot *s, uint32_t index, struct phi_snapshot_user *ret) {
        struct phi_snapshot_user u = { .index = index };
        struct phi_snap_user rec;
        const uint8_t *p;

        if (index >= s->n_users)
                return -ENOENT;
        p = record(s, PHI_SNAP_USERS, index, sizeof(rec));
        if (!p)
                return -EBADMSG;
        memcpy(&rec, p, sizeof(rec));
        u.uid = le32toh(rec.uid);
        u.gid = le32toh(rec.gid);
        if (str_at(s, le32toh(rec.name), &u.name) < 0 || str_at(s, le32toh(rec.gecos), &u.gecos) < 0 ||
            str_at(s, le32toh(rec.home), &u.home) < 0 || str_at(s, le32toh(rec.shell), &u.shell) < 0 ||
            u.name.len == 0)
                return -EBADMSG;
        *ret = u;
        return 0;
}

int phi_snapshot_group_at(const phi_snapshot *s, uint32_t index, struct phi_snapshot_group *ret) {
        struct phi_snapshot_group g = { .index = index };
        struct phi_snap_group rec;
        const uint8_t *p;

        if (index >= s->n_groups)
                return -ENOENT;
        p = record(s, PHI_SNAP_GROUPS, index, sizeof(rec));
        if (!p)
                return -EBADMSG;
        memcpy(&rec, p, sizeof(rec));
        g.gid = le32toh(rec.gid);
        g.first_member = le32toh(rec.first_member);
        g.n_members = le32toh(rec.n_members);
        if (str_at(s, le32toh(rec.name), &g.name) < 0 || g.name.len == 0 ||
            (uint64_t) g.first_member + g.n_members > s->n_members)
                return -EBADMSG;
        *ret = g;
        return 0;
}

int phi_snapshot_group_member(const phi_snapshot *s, const struct phi_snapshot_group *g, uint32_t i,
                              struct phi_snapshot_str *ret_name, uint64_t *ret_expires) {
        struct phi_snap_member rec;
        struct phi_snapshot_str name;
        const uint8_t *p;

        if (i >= g->n_members)
                return -ENOENT;
        if ((uint64_t) g->first_member + i >= s->n_members)
                return -EBADMSG;
        p = record(s, PHI_SNAP_MEMBERS, (uint64_t) g->first_member + i, sizeof(rec));
        if (!p)
                return -EBADMSG;
        memcpy(&rec, p, sizeof(rec));
        if (str_at(s, le32toh(rec.name), &name) < 0 || name.len == 0)
                return -EBADMSG;
        *ret_name = name;
        *ret_expires = le64toh(rec.expires);
        return 0;
}

static int memberof_at_index(const phi_snapshot *s, uint32_t index, struct phi_snapshot_str *ret_name,
                             struct phi_snapshot_memberof *ret) {
        struct phi_snap_memberof rec;
        const uint8_t *p;

        if (index >= s->n_memberof)
                return -EBADMSG;
        p = record(s, PHI_SNAP_MEMBEROF, index, sizeof(rec));
        if (!p)
                return -EBADMSG;
        memcpy(&rec, p, sizeof(rec));
        ret->first = le32toh(rec.first);
        ret->count = le32toh(rec.count);
        if (str_at(s, le32toh(rec.name), ret_name) < 0 ||
            (uint64_t) ret->first + ret->count > s->n_grouplist)
                return -EBADMSG;
        return 0;
}

int phi_snapshot_memberof_at(const phi_snapshot *s, const struct phi_snapshot_memberof *m,
                             uint32_t i, gid_t *ret_gid, uint64_t *ret_expires) {
        struct phi_snap_grouplist rec;
        const uint8_t *p;

        if (i >= m->count)
                return -ENOENT;
        if ((uint64_t) m->first + i >= s->n_grouplist)
                return -EBADMSG;
        p = record(s, PHI_SNAP_GROUPLIST, (uint64_t) m->first + i, sizeof(rec));
        if (!p)
                return -EBADMSG;
        memcpy(&rec, p, sizeof(rec));
        *ret_gid = le32toh(rec.gid);
        *ret_expires = le64toh(rec.expires);
        return 0;
}

/* ---- indexes ---- */

/* Calls match(index) for every slot whose key equals key along the probe
 * sequence of hash, until match returns 0 (found) or an error; -ENOENT at the
 * first empty slot. Bounded by the table size whatever the file holds. */
typedef int (*probe_fn)(const phi_snapshot *s, uint32_t index, const void *arg, void *ret);

static int probe(const phi_snapshot *s, int section, uint32_t hash, uint32_t key, probe_fn match,
                 const void *arg, void *ret) {
        uint64_t nslots = s->len[section] / sizeof(struct phi_snap_slot);
        const uint8_t *base = s->data + s->off[section];

        if (nslots == 0)
                return -EBADMSG;
        for (uint64_t pos = hash & (nslots - 1), n = 0; n < nslots; pos = (pos + 1) & (nslots - 1), n++) {
                const uint8_t *slot = base + pos * sizeof(struct phi_snap_slot);
                uint32_t index = rd32(slot + 4);
                int r;

                if (index == PHI_SNAP_EMPTY)
                        return -ENOENT;
                if (rd32(slot) != key)
                        continue;
                r = match(s, index, arg, ret);
                if (r != -ENOENT)
                        return r;
        }
        return -ENOENT;
}

struct name_key {
        const char *name;
        size_t len;
};

/* A slot that points past the records is corruption, not a miss. */
static int bad_index(int r) {
        return r == -ENOENT ? -EBADMSG : r;
}

static int match_user_name(const phi_snapshot *s, uint32_t index, const void *arg, void *ret) {
        const struct name_key *k = arg;
        struct phi_snapshot_user u;
        int r = phi_snapshot_user_at(s, index, &u);

        if (r < 0)
                return bad_index(r);
        if (!str_eq(&u.name, k->name, k->len))
                return -ENOENT;
        *(struct phi_snapshot_user *) ret = u;
        return 0;
}

static int match_uid(const phi_snapshot *s, uint32_t index, const void *arg, void *ret) {
        struct phi_snapshot_user u;
        int r = phi_snapshot_user_at(s, index, &u);

        if (r < 0)
                return bad_index(r);
        if (u.uid != *(const uid_t *) arg)
                return -EBADMSG;   /* the slot's key said this uid */
        *(struct phi_snapshot_user *) ret = u;
        return 0;
}

static int match_group_name(const phi_snapshot *s, uint32_t index, const void *arg, void *ret) {
        const struct name_key *k = arg;
        struct phi_snapshot_group g;
        int r = phi_snapshot_group_at(s, index, &g);

        if (r < 0)
                return bad_index(r);
        if (!str_eq(&g.name, k->name, k->len))
                return -ENOENT;
        *(struct phi_snapshot_group *) ret = g;
        return 0;
}

static int match_gid(const phi_snapshot *s, uint32_t index, const void *arg, void *ret) {
        struct phi_snapshot_group g;
        int r = phi_snapshot_group_at(s, index, &g);

        if (r < 0)
                return bad_index(r);
        if (g.gid != *(const gid_t *) arg)
                return -EBADMSG;
        *(struct phi_snapshot_group *) ret = g;
        return 0;
}

static int match_memberof(const phi_snapshot *s, uint32_t index, const void *arg, void *ret) {
        const struct name_key *k = arg;
        struct phi_snapshot_str name;
        struct phi_snapshot_memberof m;
        int r = memberof_at_index(s, index, &name, &m);

        if (r < 0)
                return r;
        if (!str_eq(&name, k->name, k->len))
                return -ENOENT;
        *(struct phi_snapshot_memberof *) ret = m;
        return 0;
}

/* A name longer than any stored string cannot match; never hash unbounded input. */
static int name_key(const char *name, struct name_key *ret) {
        size_t len = strnlen(name, PHI_SNAP_STR_MAX + 1);

        if (len == 0 || len > PHI_SNAP_STR_MAX)
                return -ENOENT;
        *ret = (struct name_key) { name, len };
        return 0;
}

int phi_snapshot_user_by_name(const phi_snapshot *s, const char *name, struct phi_snapshot_user *ret) {
        struct name_key k;
        uint32_t h;

        if (name_key(name, &k) < 0)
                return -ENOENT;
        h = phi_snap_hash_name(s->hash_seed, k.name, k.len);
        return probe(s, PHI_SNAP_IDX_USER_NAME, h, h, match_user_name, &k, ret);
}

int phi_snapshot_user_by_uid(const phi_snapshot *s, uid_t uid, struct phi_snapshot_user *ret) {
        return probe(s, PHI_SNAP_IDX_UID, phi_snap_hash_id(s->hash_seed, uid), uid, match_uid, &uid,
                     ret);
}

int phi_snapshot_group_by_name(const phi_snapshot *s, const char *name, struct phi_snapshot_group *ret) {
        struct name_key k;
        uint32_t h;

        if (name_key(name, &k) < 0)
                return -ENOENT;
        h = phi_snap_hash_name(s->hash_seed, k.name, k.len);
        return probe(s, PHI_SNAP_IDX_GROUP_NAME, h, h, match_group_name, &k, ret);
}

int phi_snapshot_group_by_gid(const phi_snapshot *s, gid_t gid, struct phi_snapshot_group *ret) {
        return probe(s, PHI_SNAP_IDX_GID, phi_snap_hash_id(s->hash_seed, gid), gid, match_gid, &gid,
                     ret);
}

int phi_snapshot_memberof_by_name(const phi_snapshot *s, const char *name,
                                  struct phi_snapshot_memberof *ret) {
        struct name_key k;
        uint32_t h;

        if (name_key(name, &k) < 0)
                return -ENOENT;
        h = phi_snap_hash_name(s->hash_seed, k.name, k.len);
        return probe(s, PHI_SNAP_IDX_MEMBEROF_NAME, h, h, match_memberof, &k, ret);
}

/* ---- full verification ---- */

static int verify_index(const phi_snapshot *s, int section, uint32_t n) {
        uint64_t nslots = s->len[section] / sizeof(struct phi_snap_slot);
        const uint8_t *base = s->data + s->off[section];
        uint64_t used = 0;

        for (uint64_t i = 0; i < nslots; i++) {
                uint32_t index = rd32(base + i * sizeof(struct phi_snap_slot) + 4);
                if (index == PHI_SNAP_EMPTY)
                        continue;
                if (index >= n)
                        return -EBADMSG;
                used++;
        }
        /* Every record indexed once, and an empty slot left to end probes. */
        return used == n && used < nslots ? 0 : -EBADMSG;
}

int phi_snapshot_verify(const phi_snapshot *s) {
        uint64_t sum;
        int r;

        sum = phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, s->data + PHI_SNAP_HEADER_SIZE,
                               s->size - PHI_SNAP_HEADER_SIZE);
        if (sum != rd64(s->data + offsetof(struct phi_snap_header, body_checksum)))
                return -EBADMSG;
        if ((r = verify_index(s, PHI_SNAP_IDX_USER_NAME, s->n_users)) < 0 ||
            (r = verify_index(s, PHI_SNAP_IDX_UID, s->n_users)) < 0 ||
            (r = verify_index(s, PHI_SNAP_IDX_GROUP_NAME, s->n_groups)) < 0 ||
            (r = verify_index(s, PHI_SNAP_IDX_GID, s->n_groups)) < 0 ||
            (r = verify_index(s, PHI_SNAP_IDX_MEMBEROF_NAME, s->n_memberof)) < 0)
                return r;

        /* Every record is reachable through its indexes, and is the one found. */
        for (uint32_t i = 0; i < s->n_users; i++) {
                struct phi_snapshot_user u, by_name, by_uid;
                if ((r = phi_snapshot_user_at(s, i, &u)) < 0)
                        return r;
                /* A writer never lets a user past the file's own bounds. */
                if (!phi_snapshot_primary_gid_allowed(s, u.gid))
                        return -EBADMSG;
                if (memchr(u.name.s, 0, u.name.len) || phi_snapshot_user_by_name(s, u.name.s, &by_name) < 0 ||
                    by_name.index != i || phi_snapshot_user_by_uid(s, u.uid, &by_uid) < 0 ||
                    by_uid.index != i)
                        return -EBADMSG;
        }
        for (uint32_t i = 0; i < s->n_groups; i++) {
                struct phi_snapshot_group g, by_name, by_gid;
                if ((r = phi_snapshot_group_at(s, i, &g)) < 0)
                        return r;
                if (memchr(g.name.s, 0, g.name.len) || phi_snapshot_group_by_name(s, g.name.s, &by_name) < 0 ||
                    by_name.index != i || phi_snapshot_group_by_gid(s, g.gid, &by_gid) < 0 ||
                    by_gid.index != i)
                        return -EBADMSG;
                for (uint32_t k = 0; k < g.n_members; k++) {
                        struct phi_snapshot_str name;
                        uint64_t expires;
                        if ((r = phi_snapshot_group_member(s, &g, k, &name, &expires)) < 0)
                                return r;
                }
        }
        for (uint32_t i = 0; i < s->n_memberof; i++) {
                struct phi_snapshot_str name;
                struct phi_snapshot_memberof m, found;
                if ((r = memberof_at_index(s, i, &name, &m)) < 0)
                        return r;
                if (memchr(name.s, 0, name.len) || phi_snapshot_memberof_by_name(s, name.s, &found) < 0 ||
                    found.first != m.first || found.count != m.count)
                        return -EBADMSG;
                for (uint32_t k = 0; k < m.count; k++) {
                        const uint8_t *p = record(s, PHI_SNAP_GROUPLIST, (uint64_t) m.first + k,
                                                  sizeof(struct phi_snap_grouplist));
                        struct phi_snap_grouplist gl;
                        struct phi_snapshot_group g;
                        if (!p)
                                return -EBADMSG;
                        memcpy(&gl, p, sizeof(gl));
                        if (phi_snapshot_group_at(s, le32toh(gl.group), &g) < 0 ||
                            g.gid != le32toh(gl.gid))
                                return -EBADMSG;
                }
        }
        return 0;
}

/* ---- files ---- */

int phi_snapshot_map(const char *path, phi_snapshot *ret, dev_t *ret_dev, ino_t *ret_ino) {
        const uint8_t *data = NULL;
        size_t size = 0;
        int r;

        r = phi_published_map(path, PHI_SNAP_HEADER_SIZE, PHI_SNAP_MAX_FILE, &data, &size, ret_dev,
                              ret_ino);
        if (r < 0)
                return r;
        r = phi_snapshot_open_buffer(ret, data, size);
        if (r < 0)
                phi_published_unmap(data, size);
        return r;
}

void phi_snapshot_unmap(phi_snapshot *s) {
        if (s && s->data) {
                phi_published_unmap(s->data, s->size);
                s->data = NULL;
                s->size = 0;
        }
}

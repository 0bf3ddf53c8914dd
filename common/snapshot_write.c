/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The snapshot builder and writer: collects users, groups and memberships,
 * encodes them in the format of phi/snapshot_format.h and replaces the file
 * atomically. Runs in phiaccessd only; nothing here is on a reader's path. */

#include <endian.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "phi/parse.h"
#include "phi/published.h"
#include "phi/snapshot.h"

struct buser {
        char *name, *gecos, *home, *shell;
        uint32_t uid, gid;
};

struct bgroup {
        char *name;
        uint32_t gid;
};

struct bmember {
        char *group, *user;
        uint64_t expires;
};

/* Open addressing over record indexes, keyed by a stored hash; the caller's
 * comparison settles hash collisions. idx1 is index + 1 so that 0 is empty. */
struct tab {
        struct tslot {
                uint32_t hash, idx1;
        } *slots;
        uint32_t nslots, n;
};

struct phi_snapshot_builder {
        struct buser *users;
        struct bgroup *groups;
        struct bmember *members;
        size_t n_users, n_groups, n_members;
        size_t cap_users, cap_groups, cap_members;
        struct tab t_uname, t_uid, t_gname, t_gid, t_member;
        uint32_t min_uid, min_gid;
        uint32_t primary_gids[PHI_SNAP_MAX_PRIMARY_GIDS];
        size_t n_primary_gids;
};

typedef bool (*tab_eq_fn)(const void *ctx, uint32_t idx, const void *key);

static void tab_clear(struct tab *t) {
        free(t->slots);
        *t = (struct tab) { 0 };
}

static uint32_t tab_find(const struct tab *t, uint32_t hash, tab_eq_fn eq, const void *ctx,
                         const void *key) {
        if (t->nslots == 0)
                return UINT32_MAX;
        for (uint32_t pos = hash & (t->nslots - 1), probes = 0; probes < t->nslots;
             pos = (pos + 1) & (t->nslots - 1), probes++) {
                const struct tslot *s = &t->slots[pos];
                if (s->idx1 == 0)
                        break;
                if (s->hash == hash && eq(ctx, s->idx1 - 1, key))
                        return s->idx1 - 1;
        }
        return UINT32_MAX;
}

static void tab_place(struct tslot *slots, uint32_t nslots, uint32_t hash, uint32_t idx1) {
        uint32_t pos = hash & (nslots - 1);

        while (slots[pos].idx1 != 0)
                pos = (pos + 1) & (nslots - 1);
        slots[pos] = (struct tslot) { hash, idx1 };
}

/* Grows before the load passes 1/2, so that tab_add() always finds an empty slot
 * and cannot fail: callers reserve in every table first, then add to all. */
static int tab_reserve(struct tab *t) {
        uint32_t n;
        struct tslot *slots;

        if ((uint64_t) (t->n + 1) * 2 <= t->nslots)
                return 0;
        n = t->nslots ? t->nslots * 2 : 64;
        if (n > (1u << 30))
                return -E2BIG;
        slots = calloc(n, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        for (uint32_t i = 0; i < t->nslots; i++)
                if (t->slots[i].idx1 != 0)
                        tab_place(slots, n, t->slots[i].hash, t->slots[i].idx1);
        free(t->slots);
        t->slots = slots;
        t->nslots = n;
        return 0;
}

static void tab_add(struct tab *t, uint32_t hash, uint32_t idx) {
        tab_place(t->slots, t->nslots, hash, idx + 1);
        t->n++;
}

static uint32_t hash_str(const char *s) {
        return phi_snap_hash_name(0, s, strlen(s));
}

static uint32_t hash_pair(const char *a, const char *b) {
        uint64_t h = phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, a, strlen(a) + 1);
        h = phi_snap_fnv1a64(h, b, strlen(b));
        return (uint32_t) (h ^ (h >> 32));
}

static bool eq_user_name(const void *ctx, uint32_t idx, const void *key) {
        return strcmp(((const phi_snapshot_builder *) ctx)->users[idx].name, key) == 0;
}
static bool eq_uid(const void *ctx, uint32_t idx, const void *key) {
        return ((const phi_snapshot_builder *) ctx)->users[idx].uid == *(const uint32_t *) key;
}
static bool eq_group_name(const void *ctx, uint32_t idx, const void *key) {
        return strcmp(((const phi_snapshot_builder *) ctx)->groups[idx].name, key) == 0;
}
static bool eq_gid(const void *ctx, uint32_t idx, const void *key) {
        return ((const phi_snapshot_builder *) ctx)->groups[idx].gid == *(const uint32_t *) key;
}
struct member_key {
        const char *group, *user;
};

static bool eq_member(const void *ctx, uint32_t idx, const void *key) {
        const struct bmember *m = &((const phi_snapshot_builder *) ctx)->members[idx];
        const struct member_key *k = key;
        return strcmp(m->group, k->group) == 0 && strcmp(m->user, k->user) == 0;
}

int phi_snapshot_builder_new(phi_snapshot_builder **ret) {
        phi_snapshot_builder *b = calloc(1, sizeof(*b));

        if (!b)
                return -ENOMEM;
        b->min_uid = PHI_SNAPSHOT_MIN_ID_DEFAULT;
        b->min_gid = PHI_SNAPSHOT_MIN_ID_DEFAULT;
        *ret = b;
        return 0;
}

void phi_snapshot_builder_free(phi_snapshot_builder *b) {
        if (!b)
                return;
        for (size_t i = 0; i < b->n_users; i++) {
                free(b->users[i].name);
                free(b->users[i].gecos);
                free(b->users[i].home);
                free(b->users[i].shell);
        }
        for (size_t i = 0; i < b->n_groups; i++)
                free(b->groups[i].name);
        for (size_t i = 0; i < b->n_members; i++) {
                free(b->members[i].group);
                free(b->members[i].user);
        }
        free(b->users);
        free(b->groups);
        free(b->members);
        tab_clear(&b->t_uname);
        tab_clear(&b->t_uid);
        tab_clear(&b->t_gname);
        tab_clear(&b->t_gid);
        tab_clear(&b->t_member);
        free(b);
}

int phi_snapshot_builder_set_min_ids(phi_snapshot_builder *b, uid_t min_uid, gid_t min_gid) {
        if (min_uid == 0 || min_gid == 0 || min_uid == (uid_t) -1 || min_gid == (gid_t) -1)
                return -EINVAL;
        b->min_uid = min_uid;
        b->min_gid = min_gid;
        return 0;
}

int phi_snapshot_builder_set_primary_gids(phi_snapshot_builder *b, const gid_t *gids, size_t n) {
        if (n > PHI_SNAP_MAX_PRIMARY_GIDS)
                return -E2BIG;
        for (size_t i = 0; i < n; i++) {
                if (gids[i] == 0 || gids[i] == (gid_t) -1)
                        return -EINVAL;
                for (size_t k = 0; k < i; k++)
                        if (gids[k] == gids[i])
                                return -EINVAL;
        }
        for (size_t i = 0; i < PHI_SNAP_MAX_PRIMARY_GIDS; i++)
                b->primary_gids[i] = i < n ? gids[i] : 0;
        b->n_primary_gids = n;
        return 0;
}

/* The rule readers apply (phi_snapshot_primary_gid_allowed), on the builder:
 * a directory user's primary group never shadows a local system group. */
static bool primary_gid_allowed(const phi_snapshot_builder *b, uint32_t gid) {
        if (gid == 0 || gid == UINT32_MAX)
                return false;
        if (gid >= b->min_gid)
                return true;
        for (size_t i = 0; i < b->n_primary_gids; i++)
                if (b->primary_gids[i] == gid)
                        return true;
        return false;
}

/* A passwd field: getent prints it between colons on one line, so neither may
 * appear; valid UTF-8 so that every tool can print it. */
static bool field_valid(const char *s) {
        size_t len = strnlen(s, PHI_SNAP_STR_MAX + 1);

        return len <= PHI_SNAP_STR_MAX && !strpbrk(s, ":\n") && phi_utf8_valid(s, len);
}

/* uid/gid 0 is root's and (uid_t) -1 means "no id" to chown(2) and setresuid(2). */
static bool id_valid(uint32_t id) {
        return id != 0 && id != UINT32_MAX;
}

static int grow(void **array, size_t *cap, size_t n, size_t elem, size_t max) {
        void *p;
        size_t c;

        if (n < *cap)
                return 0;
        if (n >= max)
                return -E2BIG;
        c = *cap ? *cap * 2 : 64;
        if (c > max)
                c = max;
        p = reallocarray(*array, c, elem);
        if (!p)
                return -ENOMEM;
        *array = p;
        *cap = c;
        return 0;
}

int phi_snapshot_add_user(phi_snapshot_builder *b, const char *name, uid_t uid, gid_t gid,
                          const char *gecos, const char *home, const char *shell) {
        struct buser u = { 0 };
        uint32_t id = uid;
        int r;

        if (!phi_name_valid(name) || strcmp(name, "root") == 0 || !id_valid(uid) ||
            !id_valid(gid) || !primary_gid_allowed(b, gid) || !field_valid(gecos) ||
            !field_valid(home) || !field_valid(shell))
                return -EINVAL;
        if (tab_find(&b->t_uname, hash_str(name), eq_user_name, b, name) != UINT32_MAX ||
            tab_find(&b->t_uid, phi_snap_mix32(id), eq_uid, b, &id) != UINT32_MAX)
                return -EEXIST;
        if ((r = grow((void **) &b->users, &b->cap_users, b->n_users, sizeof(*b->users),
                      PHI_SNAP_MAX_RECORDS)) < 0 ||
            (r = tab_reserve(&b->t_uname)) < 0 || (r = tab_reserve(&b->t_uid)) < 0)
                return r;
        u = (struct buser) { .name = strdup(name), .gecos = strdup(gecos), .home = strdup(home),
                             .shell = strdup(shell), .uid = uid, .gid = gid };
        if (!u.name || !u.gecos || !u.home || !u.shell) {
                free(u.name);
                free(u.gecos);
                free(u.home);
                free(u.shell);
                return -ENOMEM;
        }
        tab_add(&b->t_uname, hash_str(name), (uint32_t) b->n_users);
        tab_add(&b->t_uid, phi_snap_mix32(id), (uint32_t) b->n_users);
        b->users[b->n_users++] = u;
        return 0;
}

int phi_snapshot_add_group(phi_snapshot_builder *b, const char *name, gid_t gid) {
        uint32_t id = gid;
        char *copy = NULL;
        int r;

        if (!phi_name_valid(name) || strcmp(name, "root") == 0 || !id_valid(gid))
                return -EINVAL;
        if (tab_find(&b->t_gname, hash_str(name), eq_group_name, b, name) != UINT32_MAX ||
            tab_find(&b->t_gid, phi_snap_mix32(id), eq_gid, b, &id) != UINT32_MAX)
                return -EEXIST;
        if ((r = grow((void **) &b->groups, &b->cap_groups, b->n_groups, sizeof(*b->groups),
                      PHI_SNAP_MAX_RECORDS)) < 0 ||
            (r = tab_reserve(&b->t_gname)) < 0 || (r = tab_reserve(&b->t_gid)) < 0)
                return r;
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        tab_add(&b->t_gname, hash_str(name), (uint32_t) b->n_groups);
        tab_add(&b->t_gid, phi_snap_mix32(id), (uint32_t) b->n_groups);
        b->groups[b->n_groups++] = (struct bgroup) { .name = copy, .gid = gid };
        return 0;
}

/* A repeated membership is merged rather than refused: a directory membership
 * and a grant of the same group must not end at the grant's expiry. Permanent
 * wins, otherwise the later expiry. */
int phi_snapshot_add_member(phi_snapshot_builder *b, const char *group, const char *user,
                            uint64_t expires) {
        struct member_key key = { group, user };
        uint32_t hash, found;
        struct bmember m;
        int r;

        if (!phi_name_valid(group) || !phi_name_valid(user))
                return -EINVAL;
        hash = hash_pair(group, user);
        found = tab_find(&b->t_member, hash, eq_member, b, &key);
        if (found != UINT32_MAX) {
                struct bmember *old = &b->members[found];
                if (old->expires != 0 && (expires == 0 || expires > old->expires))
                        old->expires = expires;
                return 0;
        }
        if ((r = grow((void **) &b->members, &b->cap_members, b->n_members, sizeof(*b->members),
                      PHI_SNAP_MAX_MEMBERS)) < 0 ||
            (r = tab_reserve(&b->t_member)) < 0)
                return r;
        m = (struct bmember) { .group = strdup(group), .user = strdup(user), .expires = expires };
        if (!m.group || !m.user) {
                free(m.group);
                free(m.user);
                return -ENOMEM;
        }
        tab_add(&b->t_member, hash, (uint32_t) b->n_members);
        b->members[b->n_members++] = m;
        return 0;
}

/* ---- encoding ---- */

/* Interned strings, laid out as the strings section will be. */
struct strtab {
        uint8_t *blob;
        size_t len, cap;
        struct tab t;
        uint32_t *offs;   /* offset (relative to the section) of string number i */
        size_t n, cap_offs;
};

struct strtab_key {
        const struct strtab *st;
};

static bool eq_interned(const void *ctx, uint32_t idx, const void *key) {
        const struct strtab *st = ctx;
        const char *s = key;
        uint16_t len;

        memcpy(&len, st->blob + st->offs[idx], sizeof(len));
        len = le16toh(len);
        return strlen(s) == len && memcmp(st->blob + st->offs[idx] + 2, s, len) == 0;
}

/* Returns the file offset of s (the section starts right after the header), or
 * 0 with *r set on failure. */
static uint32_t strtab_intern(struct strtab *st, const char *s, int *r) {
        size_t len = strlen(s);
        uint32_t hash = hash_str(s), found;
        uint16_t le;

        if (*r < 0)
                return 0;
        found = tab_find(&st->t, hash, eq_interned, st, s);
        if (found != UINT32_MAX)
                return PHI_SNAP_HEADER_SIZE + st->offs[found];
        if (len > PHI_SNAP_STR_MAX || st->len + len + 3 > PHI_SNAP_MAX_FILE) {
                *r = -E2BIG;
                return 0;
        }
        if (st->len + len + 3 > st->cap) {
                size_t c = st->cap ? st->cap * 2 : 65536;
                uint8_t *p;
                while (c < st->len + len + 3)
                        c *= 2;
                p = realloc(st->blob, c);
                if (!p) {
                        *r = -ENOMEM;
                        return 0;
                }
                st->blob = p;
                st->cap = c;
        }
        if ((*r = grow((void **) &st->offs, &st->cap_offs, st->n, sizeof(*st->offs),
                       PHI_SNAP_MAX_FILE)) < 0 ||
            (*r = tab_reserve(&st->t)) < 0)
                return 0;
        tab_add(&st->t, hash, (uint32_t) st->n);
        st->offs[st->n++] = (uint32_t) st->len;
        le = htole16((uint16_t) len);
        memcpy(st->blob + st->len, &le, 2);
        memcpy(st->blob + st->len + 2, s, len);
        st->blob[st->len + 2 + len] = 0;
        st->len += len + 3;
        return PHI_SNAP_HEADER_SIZE + (uint32_t) (st->len - len - 3);
}

static void strtab_clear(struct strtab *st) {
        free(st->blob);
        free(st->offs);
        tab_clear(&st->t);
}

static uint64_t align8(uint64_t v) {
        return (v + 7) & ~(uint64_t) 7;
}

static uint32_t slots_for(size_t n) {
        uint32_t s = PHI_SNAP_MIN_SLOTS;

        while (s < n * 2)
                s *= 2;
        return s;
}

static void put_slot(uint8_t *section, uint32_t nslots, uint32_t hash, uint32_t key,
                     uint32_t index) {
        struct phi_snap_slot slot;
        uint32_t pos = hash & (nslots - 1);

        for (;;) {
                memcpy(&slot, section + (size_t) pos * sizeof(slot), sizeof(slot));
                if (slot.index == PHI_SNAP_EMPTY)
                        break;
                pos = (pos + 1) & (nslots - 1);
        }
        slot = (struct phi_snap_slot) { htole32(key), htole32(index) };
        memcpy(section + (size_t) pos * sizeof(slot), &slot, sizeof(slot));
}

static uint32_t random_seed(void) {
        uint32_t seed;

        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed)) {
                struct timespec ts;
                (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                seed = (uint32_t) ts.tv_nsec ^ (uint32_t) getpid();
        }
        return seed;
}

struct member_name {
        const char *name;
        uint32_t count, first, fill;
};

static bool eq_member_name(const void *ctx, uint32_t idx, const void *key) {
        return strcmp(((const struct member_name *) ctx)[idx].name, key) == 0;
}

int phi_snapshot_encode(phi_snapshot_builder *b, uint64_t generation, uint64_t created,
                        uint8_t **ret_data, size_t *ret_size) {
        _cleanup_free_ uint32_t *group_of = NULL, *group_first = NULL, *group_fill = NULL,
                                *order = NULL, *mo_of = NULL, *user_name = NULL,
                                *group_name = NULL, *member_name_ref = NULL, *mo_name_ref = NULL;
        _cleanup_free_ struct member_name *mo = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        struct strtab st = { 0 };
        struct tab t_mo = { 0 };
        struct phi_snap_header h = { 0 };
        uint64_t size[PHI_SNAP_SECTION_COUNT] = { 0 }, off = PHI_SNAP_HEADER_SIZE;
        uint32_t nslots[PHI_SNAP_SECTION_COUNT] = { 0 }, n_mo = 0, seed = random_seed();
        int r = 0;

        /* The bounds go into the header: refuse a file that would break them
         * (bounds changed after users were added), and a list entry that is
         * not below min_gid (readers would refuse the file). */
        for (size_t i = 0; i < b->n_primary_gids; i++)
                if (b->primary_gids[i] >= b->min_gid) {
                        r = -EINVAL;
                        goto out;
                }
        for (size_t i = 0; i < b->n_users; i++)
                if (!primary_gid_allowed(b, b->users[i].gid)) {
                        r = -EINVAL;
                        goto out;
                }

        /* Resolve each membership's group; lay members out grouped by group, in the
         * order they were added (a stable counting sort). */
        group_of = calloc(b->n_members + 1, sizeof(uint32_t));
        group_first = calloc(b->n_groups + 1, sizeof(uint32_t));
        group_fill = calloc(b->n_groups + 1, sizeof(uint32_t));
        order = calloc(b->n_members + 1, sizeof(uint32_t));
        mo_of = calloc(b->n_members + 1, sizeof(uint32_t));
        mo = calloc(b->n_members + 1, sizeof(*mo));
        if (!group_of || !group_first || !group_fill || !order || !mo_of || !mo) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < b->n_members; i++) {
                const char *g = b->members[i].group;
                group_of[i] = tab_find(&b->t_gname, hash_str(g), eq_group_name, b, g);
                if (group_of[i] == UINT32_MAX) {
                        r = -ENOENT;
                        goto out;
                }
                group_first[group_of[i] + 1]++;
        }
        for (size_t g = 0; g < b->n_groups; g++)
                group_first[g + 1] += group_first[g];
        for (size_t i = 0; i < b->n_members; i++)
                order[group_first[group_of[i]] + group_fill[group_of[i]]++] = (uint32_t) i;

        /* The user -> groups index: one entry per distinct member name. */
        for (size_t k = 0; k < b->n_members; k++) {
                const char *u = b->members[order[k]].user;
                uint32_t hash = hash_str(u);
                uint32_t id = tab_find(&t_mo, hash, eq_member_name, mo, u);
                if (id == UINT32_MAX) {
                        id = n_mo++;
                        mo[id].name = u;
                        if ((r = tab_reserve(&t_mo)) < 0)
                                goto out;
                        tab_add(&t_mo, hash, id);
                }
                mo[id].count++;
                mo_of[k] = id;
        }
        for (uint32_t i = 1; i < n_mo; i++)
                mo[i].first = mo[i - 1].first + mo[i - 1].count;

        /* Strings, then the section layout. */
        user_name = calloc(b->n_users * 4 + 1, sizeof(uint32_t));
        group_name = calloc(b->n_groups + 1, sizeof(uint32_t));
        member_name_ref = calloc(b->n_members + 1, sizeof(uint32_t));
        mo_name_ref = calloc(n_mo + 1, sizeof(uint32_t));
        if (!user_name || !group_name || !member_name_ref || !mo_name_ref) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < b->n_users && r >= 0; i++) {
                user_name[i * 4 + 0] = strtab_intern(&st, b->users[i].name, &r);
                user_name[i * 4 + 1] = strtab_intern(&st, b->users[i].gecos, &r);
                user_name[i * 4 + 2] = strtab_intern(&st, b->users[i].home, &r);
                user_name[i * 4 + 3] = strtab_intern(&st, b->users[i].shell, &r);
        }
        for (size_t i = 0; i < b->n_groups && r >= 0; i++)
                group_name[i] = strtab_intern(&st, b->groups[i].name, &r);
        for (size_t k = 0; k < b->n_members && r >= 0; k++)
                member_name_ref[k] = strtab_intern(&st, b->members[order[k]].user, &r);
        for (uint32_t i = 0; i < n_mo && r >= 0; i++)
                mo_name_ref[i] = strtab_intern(&st, mo[i].name, &r);
        if (r < 0)
                goto out;

        nslots[PHI_SNAP_IDX_USER_NAME] = nslots[PHI_SNAP_IDX_UID] = slots_for(b->n_users);
        nslots[PHI_SNAP_IDX_GROUP_NAME] = nslots[PHI_SNAP_IDX_GID] = slots_for(b->n_groups);
        nslots[PHI_SNAP_IDX_MEMBEROF_NAME] = slots_for(n_mo);
        size[PHI_SNAP_STRINGS] = st.len;
        size[PHI_SNAP_USERS] = b->n_users * sizeof(struct phi_snap_user);
        size[PHI_SNAP_GROUPS] = b->n_groups * sizeof(struct phi_snap_group);
        size[PHI_SNAP_MEMBERS] = b->n_members * sizeof(struct phi_snap_member);
        size[PHI_SNAP_MEMBEROF] = n_mo * sizeof(struct phi_snap_memberof);
        size[PHI_SNAP_GROUPLIST] = b->n_members * sizeof(struct phi_snap_grouplist);
        for (int s = PHI_SNAP_IDX_USER_NAME; s < PHI_SNAP_SECTION_COUNT; s++)
                size[s] = (uint64_t) nslots[s] * sizeof(struct phi_snap_slot);
        for (int s = 0; s < PHI_SNAP_SECTION_COUNT; s++) {
                h.sections[s].offset = htole64(off);
                h.sections[s].size = htole64(size[s]);
                off = align8(off + size[s]);
        }
        if (off > PHI_SNAP_MAX_FILE) {
                r = -E2BIG;
                goto out;
        }
        out = calloc(1, off);
        if (!out) {
                r = -ENOMEM;
                goto out;
        }
        if (st.len > 0)
                memcpy(out + PHI_SNAP_HEADER_SIZE, st.blob, st.len);
        for (int s = PHI_SNAP_IDX_USER_NAME; s < PHI_SNAP_SECTION_COUNT; s++)
                memset(out + le64toh(h.sections[s].offset), 0xff, size[s]);

#define SECTION(s) (out + le64toh(h.sections[s].offset))
        for (size_t i = 0; i < b->n_users; i++) {
                const struct buser *u = &b->users[i];
                struct phi_snap_user rec = {
                        htole32(user_name[i * 4]), htole32(user_name[i * 4 + 1]),
                        htole32(user_name[i * 4 + 2]), htole32(user_name[i * 4 + 3]),
                        htole32(u->uid), htole32(u->gid),
                };
                memcpy(SECTION(PHI_SNAP_USERS) + i * sizeof(rec), &rec, sizeof(rec));
                put_slot(SECTION(PHI_SNAP_IDX_USER_NAME), nslots[PHI_SNAP_IDX_USER_NAME],
                         phi_snap_hash_name(seed, u->name, strlen(u->name)),
                         phi_snap_hash_name(seed, u->name, strlen(u->name)), (uint32_t) i);
                put_slot(SECTION(PHI_SNAP_IDX_UID), nslots[PHI_SNAP_IDX_UID],
                         phi_snap_hash_id(seed, u->uid), u->uid, (uint32_t) i);
        }
        for (size_t i = 0; i < b->n_groups; i++) {
                const struct bgroup *g = &b->groups[i];
                struct phi_snap_group rec = {
                        htole32(group_name[i]), htole32(g->gid), htole32(group_first[i]),
                        htole32(group_first[i + 1] - group_first[i]),
                };
                memcpy(SECTION(PHI_SNAP_GROUPS) + i * sizeof(rec), &rec, sizeof(rec));
                put_slot(SECTION(PHI_SNAP_IDX_GROUP_NAME), nslots[PHI_SNAP_IDX_GROUP_NAME],
                         phi_snap_hash_name(seed, g->name, strlen(g->name)),
                         phi_snap_hash_name(seed, g->name, strlen(g->name)), (uint32_t) i);
                put_slot(SECTION(PHI_SNAP_IDX_GID), nslots[PHI_SNAP_IDX_GID],
                         phi_snap_hash_id(seed, g->gid), g->gid, (uint32_t) i);
        }
        for (size_t k = 0; k < b->n_members; k++) {
                const struct bmember *m = &b->members[order[k]];
                uint32_t g = group_of[order[k]];
                struct member_name *n = &mo[mo_of[k]];
                struct phi_snap_member rec = { htole32(member_name_ref[k]), 0,
                                               htole64(m->expires) };
                struct phi_snap_grouplist gl = { htole32(b->groups[g].gid), htole32(g),
                                                 htole64(m->expires) };
                memcpy(SECTION(PHI_SNAP_MEMBERS) + k * sizeof(rec), &rec, sizeof(rec));
                memcpy(SECTION(PHI_SNAP_GROUPLIST) + (size_t) (n->first + n->fill++) * sizeof(gl),
                       &gl, sizeof(gl));
        }
        for (uint32_t i = 0; i < n_mo; i++) {
                struct phi_snap_memberof rec = { htole32(mo_name_ref[i]), htole32(mo[i].first),
                                                 htole32(mo[i].count), 0 };
                uint32_t hash = phi_snap_hash_name(seed, mo[i].name, strlen(mo[i].name));
                memcpy(SECTION(PHI_SNAP_MEMBEROF) + (size_t) i * sizeof(rec), &rec, sizeof(rec));
                put_slot(SECTION(PHI_SNAP_IDX_MEMBEROF_NAME), nslots[PHI_SNAP_IDX_MEMBEROF_NAME],
                         hash, hash, i);
        }
#undef SECTION

        memcpy(h.magic, PHI_SNAP_MAGIC, PHI_SNAP_MAGIC_SIZE);
        h.version = htole32(PHI_SNAP_VERSION);
        h.header_size = htole32(PHI_SNAP_HEADER_SIZE);
        h.generation = htole64(generation);
        h.created = htole64(created);
        h.file_size = htole64(off);
        h.min_uid = htole32(b->min_uid);
        h.min_gid = htole32(b->min_gid);
        h.n_primary_gids = htole32((uint32_t) b->n_primary_gids);
        for (size_t i = 0; i < PHI_SNAP_MAX_PRIMARY_GIDS; i++)
                h.primary_gids[i] = htole32(b->primary_gids[i]);
        h.hash_seed = htole32(seed);
        h.n_users = htole32((uint32_t) b->n_users);
        h.n_groups = htole32((uint32_t) b->n_groups);
        h.n_members = htole32((uint32_t) b->n_members);
        h.n_memberof = htole32(n_mo);
        h.n_grouplist = htole32((uint32_t) b->n_members);
        h.body_checksum = htole64(phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, out + PHI_SNAP_HEADER_SIZE,
                                                   off - PHI_SNAP_HEADER_SIZE));
        h.header_checksum = htole64(phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, &h, sizeof(h)));
        memcpy(out, &h, sizeof(h));

        *ret_data = PHI_TAKE_PTR(out);
        *ret_size = off;
        r = 0;
out:
        strtab_clear(&st);
        tab_clear(&t_mo);
        return r;
}

/* ---- the file ---- */

static const struct phi_published_format snapshot_format = {
        .magic = PHI_SNAP_MAGIC,
        .magic_size = PHI_SNAP_MAGIC_SIZE,
        .superseded_offset = PHI_SNAP_SUPERSEDED_OFFSET,
        .header_size = PHI_SNAP_HEADER_SIZE,
};

int phi_snapshot_write(phi_snapshot_builder *b, const char *path, uint64_t generation) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        int r;

        r = phi_snapshot_encode(b, generation, (uint64_t) time(NULL), &data, &size);
        if (r < 0)
                return r;
        return phi_published_write(path, data, size, &snapshot_format);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The grants snapshot (phi/grants.h): what the writer accepts and refuses, a
 * round trip through the reader, its bounds, corrupt files (each refused as a
 * whole: a grants file is verified when it is opened), expiry decided at read
 * time, and the file replaced with the old one marked superseded. Every case
 * runs on an exact-size heap copy so that the sanitizer build sees overreads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "phi/grants.h"
#include "phi/parse.h"

#define NOW 1800000000ull

static const struct phi_grant_entry sample[] = {
        { "phi-dba", 30000, "bob", NOW + 600, 7 },
        { "phi-dba", 30000, "alice", NOW + 300, 3 },
        { "phi-ops", 30001, "carol", NOW - 1, 9 },       /* already over */
        { "phi-dba", 30000, "alice", NOW + 900, 12 },     /* a second grant, same group */
        { "phi-ops", 30001, "alice", NOW + 60, 4 },
};

static uint8_t *encode(const struct phi_grant_entry *e, size_t n, size_t *size) {
        uint8_t *data = NULL;

        assert_int_equal(phi_grants_encode(e, n, 1000, 5, NOW, &data, size), 0);
        return data;
}

/* An exact-size copy opened; the copy is returned for freeing. */
static int open_copy(const uint8_t *data, size_t size, phi_grants *g, uint8_t **copy) {
        *copy = malloc(size ? size : 1);
        assert_non_null(*copy);
        memcpy(*copy, data, size);
        return phi_grants_open_buffer(g, *copy, size);
}

/* Recomputes both checksums after an edit, so that the structural checks
 * behind them are what refuses the file. */
static void fix_checksums(uint8_t *data, size_t size) {
        struct phi_grants_header h;

        memcpy(&h, data, sizeof(h));
        h.body_checksum = htole64(phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, data + PHI_GRANTS_HEADER_SIZE,
                                                   size - PHI_GRANTS_HEADER_SIZE));
        h.superseded = 0;
        h.header_checksum = 0;
        h.header_checksum = htole64(phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, &h, sizeof(h)));
        memcpy(data, &h, sizeof(h));
}

static void put32(uint8_t *p, uint32_t v) {
        v = htole32(v);
        memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v) {
        v = htole64(v);
        memcpy(p, &v, sizeof(v));
}

static void test_round_trip(void **state) {
        _cleanup_free_ uint8_t *data = NULL, *copy = NULL;
        struct phi_grants_group_view gr;
        struct phi_grants_user_view u;
        struct phi_grant_view v;
        size_t size = 0;
        phi_grants g;

        (void) state;
        data = encode(sample, PHI_ELEMENTSOF(sample), &size);
        assert_int_equal(open_copy(data, size, &g, &copy), 0);
        assert_int_equal(g.generation, 5);
        assert_int_equal(g.created, NOW);
        assert_int_equal(g.min_gid, 1000);
        assert_int_equal(g.n_grants, 5);
        assert_int_equal(g.n_groups, 2);
        assert_int_equal(g.n_users, 3);
        assert_false(phi_grants_superseded(&g));

        /* A group's grants by user, then request id; names and gids both find it. */
        assert_int_equal(phi_grants_group_by_name(&g, "phi-dba", &gr), 0);
        assert_int_equal(gr.gid, 30000);
        assert_string_equal(gr.name.s, "phi-dba");
        assert_int_equal(gr.count, 3);
        assert_int_equal(phi_grants_group_grant(&g, &gr, 0, &v), 0);
        assert_string_equal(v.user.s, "alice");
        assert_int_equal(v.request_id, 3);
        assert_int_equal(v.expires, NOW + 300);
        assert_int_equal(phi_grants_group_grant(&g, &gr, 1, &v), 0);
        assert_string_equal(v.user.s, "alice");
        assert_int_equal(v.request_id, 12);
        assert_int_equal(phi_grants_group_grant(&g, &gr, 2, &v), 0);
        assert_string_equal(v.user.s, "bob");
        assert_int_equal(phi_grants_group_grant(&g, &gr, 3, &v), -ENOENT);
        assert_int_equal(phi_grants_group_by_gid(&g, 30001, &gr), 0);
        assert_string_equal(gr.name.s, "phi-ops");
        assert_int_equal(gr.count, 2);
        assert_int_equal(phi_grants_group_at(&g, 1, &gr), 0);
        assert_string_equal(gr.name.s, "phi-ops");
        assert_int_equal(phi_grants_group_at(&g, 2, &gr), -ENOENT);

        /* A user's grants, each naming its group. */
        assert_int_equal(phi_grants_user_by_name(&g, "alice", &u), 0);
        assert_int_equal(u.count, 3);
        for (uint32_t k = 0; k < u.count; k++) {
                assert_int_equal(phi_grants_user_grant(&g, &u, k, &v), 0);
                assert_string_equal(v.user.s, "alice");
                assert_int_equal(phi_grants_group_at(&g, v.group, &gr), 0);
                assert_true(gr.gid == 30000 || gr.gid == 30001);
        }
        assert_int_equal(phi_grants_user_grant(&g, &u, 3, &v), -ENOENT);
        assert_int_equal(phi_grants_user_by_name(&g, "carol", &u), 0);
        assert_int_equal(u.count, 1);

        /* Misses. */
        assert_int_equal(phi_grants_group_by_name(&g, "phi-db", &gr), -ENOENT);
        assert_int_equal(phi_grants_group_by_name(&g, "phi-dbaa", &gr), -ENOENT);
        assert_int_equal(phi_grants_group_by_name(&g, "", &gr), -ENOENT);
        assert_int_equal(phi_grants_group_by_gid(&g, 30002, &gr), -ENOENT);
        assert_int_equal(phi_grants_group_by_gid(&g, 0, &gr), -ENOENT);
        assert_int_equal(phi_grants_user_by_name(&g, "dave", &u), -ENOENT);
        {
                char longname[PHI_NAME_MAX + 8];
                memset(longname, 'a', sizeof(longname) - 1);
                longname[sizeof(longname) - 1] = '\0';
                assert_int_equal(phi_grants_user_by_name(&g, longname, &u), -ENOENT);
        }

        /* The same grants in another order make the same file, but for the
         * checksum-free header fields nothing differs. */
        {
                struct phi_grant_entry rev[PHI_ELEMENTSOF(sample)];
                _cleanup_free_ uint8_t *other = NULL;
                size_t other_size = 0;
                for (size_t i = 0; i < PHI_ELEMENTSOF(sample); i++)
                        rev[i] = sample[PHI_ELEMENTSOF(sample) - 1 - i];
                other = encode(rev, PHI_ELEMENTSOF(rev), &other_size);
                assert_int_equal(other_size, size);
                assert_memory_equal(other, data, size);
        }
}

static void test_empty(void **state) {
        _cleanup_free_ uint8_t *data = NULL, *copy = NULL;
        struct phi_grants_group_view gr;
        struct phi_grants_user_view u;
        size_t size = 0;
        phi_grants g;

        (void) state;
        assert_int_equal(phi_grants_encode(NULL, 0, 1000, 1, NOW, &data, &size), 0);
        assert_int_equal(size, PHI_GRANTS_HEADER_SIZE);
        assert_int_equal(open_copy(data, size, &g, &copy), 0);
        assert_int_equal(g.n_grants, 0);
        assert_int_equal(phi_grants_group_by_name(&g, "phi-dba", &gr), -ENOENT);
        assert_int_equal(phi_grants_group_by_gid(&g, 30000, &gr), -ENOENT);
        assert_int_equal(phi_grants_user_by_name(&g, "alice", &u), -ENOENT);
        assert_int_equal(phi_grants_group_at(&g, 0, &gr), -ENOENT);
}

static int try_one(struct phi_grant_entry e) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;

        return phi_grants_encode(&e, 1, 1000, 1, NOW, &data, &size);
}

static void test_writer_refuses(void **state) {
        static const struct phi_grant_entry ok = { "phi-dba", 30000, "alice", NOW + 1, 1 };
        _cleanup_free_ uint8_t *data = NULL;
        struct phi_grant_entry e;
        size_t size = 0;

        (void) state;
        assert_int_equal(try_one(ok), 0);
        e = ok, e.group = "root";
        assert_int_equal(try_one(e), -EINVAL);
        e = ok, e.user = "root";
        assert_int_equal(try_one(e), -EINVAL);
        e = ok, e.user = "al:ice";
        assert_int_equal(try_one(e), -EINVAL);
        e = ok, e.group = "";
        assert_int_equal(try_one(e), -EINVAL);
        e = ok, e.user = "a-name-longer-than-thirty-two-bytes";
        assert_int_equal(try_one(e), -EINVAL);
        e = ok, e.gid = 0;
        assert_int_equal(try_one(e), -EINVAL);
        e = ok, e.gid = (gid_t) -1;
        assert_int_equal(try_one(e), -EINVAL);
        e = ok, e.gid = 27;   /* sudo's group on Debian: below min_gid */
        assert_int_equal(try_one(e), -EINVAL);
        e = ok, e.expires = 0;   /* a grant without an end */
        assert_int_equal(try_one(e), -EINVAL);
        assert_int_equal(phi_grants_encode(&ok, 1, 0, 1, NOW, &data, &size), -EINVAL);

        /* One name, one gid. */
        {
                const struct phi_grant_entry two_gids[] = { ok, { "phi-dba", 30001, "bob", NOW + 1, 2 } };
                const struct phi_grant_entry two_names[] = { ok, { "phi-ops", 30000, "bob", NOW + 1, 2 } };
                const struct phi_grant_entry twice[] = { ok, ok };
                assert_int_equal(phi_grants_encode(two_gids, 2, 1000, 1, NOW, &data, &size), -EINVAL);
                assert_int_equal(phi_grants_encode(two_names, 2, 1000, 1, NOW, &data, &size), -EINVAL);
                assert_int_equal(phi_grants_encode(twice, 2, 1000, 1, NOW, &data, &size), -EEXIST);
        }
        assert_null(data);
}

/* PHI_GRANTS_MAX grants (each user its own) are written and read back; one
 * more is refused. */
static void test_bounds(void **state) {
        _cleanup_free_ struct phi_grant_entry *e = calloc(PHI_GRANTS_MAX + 1, sizeof(*e));
        _cleanup_free_ char *names = calloc(PHI_GRANTS_MAX + 1, 16);
        _cleanup_free_ uint8_t *data = NULL, *copy = NULL;
        struct phi_grants_user_view u;
        struct phi_grants_group_view gr;
        size_t size = 0;
        phi_grants g;

        (void) state;
        assert_non_null(e);
        assert_non_null(names);
        for (uint32_t i = 0; i <= PHI_GRANTS_MAX; i++) {
                snprintf(names + (size_t) i * 16, 16, "u%06u", i);
                e[i] = (struct phi_grant_entry) { i % 2 ? "phi-dba" : "phi-ops", i % 2 ? 30000 : 30001,
                                                  names + (size_t) i * 16, NOW + i, i };
        }
        assert_int_equal(phi_grants_encode(e, PHI_GRANTS_MAX + 1, 1000, 1, NOW, &data, &size), -E2BIG);
        assert_int_equal(phi_grants_encode(e, PHI_GRANTS_MAX, 1000, 1, NOW, &data, &size), 0);
        assert_true(size <= PHI_GRANTS_MAX_FILE);
        assert_int_equal(open_copy(data, size, &g, &copy), 0);
        assert_int_equal(g.n_grants, PHI_GRANTS_MAX);
        assert_int_equal(phi_grants_user_by_name(&g, "u065535", &u), 0);
        assert_int_equal(phi_grants_group_by_name(&g, "phi-dba", &gr), 0);
        assert_int_equal(gr.count, PHI_GRANTS_MAX / 2);
}

/* A header or body edit is refused by the checksums; with the checksums made
 * to match, by the structure checks. Each case is one thing a hostile or
 * broken file could say. */
static void test_corrupt(void **state) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        phi_grants g;
        struct phi_grants_header h;

        (void) state;
        data = encode(sample, PHI_ELEMENTSOF(sample), &size);
        memcpy(&h, data, sizeof(h));

#define REFUSED(expect, edit, fix)                                               \
        do {                                                                     \
                _cleanup_free_ uint8_t *c = NULL;                                \
                uint8_t *d = malloc(size);                                       \
                assert_non_null(d);                                              \
                memcpy(d, data, size);                                           \
                edit;                                                            \
                if (fix)                                                         \
                        fix_checksums(d, size);                                  \
                assert_int_equal(open_copy(d, size, &g, &c), expect);            \
                free(d);                                                         \
        } while (0)
#define AT(section, index, type, field) \
        (d + le64toh(h.sections[section].offset) + (size_t) (index) * sizeof(type) + offsetof(type, field))

        /* Untouched, and a fixed-up untouched copy, open. */
        REFUSED(0, (void) 0, false);
        REFUSED(0, (void) 0, true);
        /* Header. */
        REFUSED(-EBADMSG, d[0] ^= 1, false);                                     /* magic */
        REFUSED(-EPROTONOSUPPORT, put32(d + 8, 2), false);                       /* version */
        REFUSED(-EBADMSG, d[40] ^= 1, false);                                    /* checksum */
        REFUSED(-EBADMSG, d[size - 1] ^= 1, false);                              /* body */
        REFUSED(-EBADMSG, put32(d + offsetof(struct phi_grants_header, flags), 1), true);
        REFUSED(-EBADMSG, put32(d + offsetof(struct phi_grants_header, min_gid), 0), true);
        REFUSED(-EBADMSG, put32(d + offsetof(struct phi_grants_header, n_grants), 4), true);
        REFUSED(-EBADMSG, put32(d + offsetof(struct phi_grants_header, n_groups), 3), true);
        REFUSED(-EBADMSG, put32(d + offsetof(struct phi_grants_header, n_users), 9), true);
        REFUSED(-EBADMSG, put32(d + offsetof(struct phi_grants_header, min_gid), 30001), true);
        REFUSED(-EBADMSG, d[offsetof(struct phi_grants_header, reserved)] = 1, true);
        REFUSED(-EBADMSG, put64(d + offsetof(struct phi_grants_header, file_size), size + 8), true);
        REFUSED(-EBADMSG, put64(d + offsetof(struct phi_grants_header, sections) + 16 * PHI_GRANTS_GRANTS, 1), true);
        /* Groups: gid 0, gid below min_gid, an empty slice, names out of order. */
        REFUSED(-EBADMSG, put32(AT(PHI_GRANTS_GROUPS, 0, struct phi_grants_group, gid), 0), true);
        REFUSED(-EBADMSG, put32(AT(PHI_GRANTS_GROUPS, 0, struct phi_grants_group, gid), 27), true);
        REFUSED(-EBADMSG, put32(AT(PHI_GRANTS_GROUPS, 1, struct phi_grants_group, gid), 30000), true);
        REFUSED(-EBADMSG, put32(AT(PHI_GRANTS_GROUPS, 0, struct phi_grants_group, count), 2), true);
        REFUSED(-EBADMSG, put32(AT(PHI_GRANTS_GROUPS, 0, struct phi_grants_group, count), 0), true);
        REFUSED(-EBADMSG, put32(AT(PHI_GRANTS_GROUPS, 0, struct phi_grants_group, name), 3), true);
        {
                uint8_t n0[4], n1[4];
                /* The two groups' names swapped: out of order. */
                REFUSED(-EBADMSG,
                        (memcpy(n0, AT(PHI_GRANTS_GROUPS, 0, struct phi_grants_group, name), 4),
                         memcpy(n1, AT(PHI_GRANTS_GROUPS, 1, struct phi_grants_group, name), 4),
                         memcpy(AT(PHI_GRANTS_GROUPS, 0, struct phi_grants_group, name), n1, 4),
                         memcpy(AT(PHI_GRANTS_GROUPS, 1, struct phi_grants_group, name), n0, 4)),
                        true);
        }
        /* Grants: no end, another group's index, a user string elsewhere, the
         * order inside a group broken (same user, request ids not ascending). */
        REFUSED(-EBADMSG, put64(AT(PHI_GRANTS_GRANTS, 0, struct phi_grants_grant, expires), 0), true);
        REFUSED(-EBADMSG, put32(AT(PHI_GRANTS_GRANTS, 0, struct phi_grants_grant, group), 1), true);
        REFUSED(-EBADMSG, put32(AT(PHI_GRANTS_GRANTS, 0, struct phi_grants_grant, group), 7), true);
        REFUSED(-EBADMSG, put32(AT(PHI_GRANTS_GRANTS, 0, struct phi_grants_grant, user), (uint32_t) size), true);
        REFUSED(-EBADMSG, put64(AT(PHI_GRANTS_GRANTS, 0, struct phi_grants_grant, request_id), 12), true);
        /* Users and the indexes. */
        REFUSED(-EBADMSG, put32(AT(PHI_GRANTS_USERS, 0, struct phi_grants_user, count), 2), true);
        REFUSED(-EBADMSG, put32(AT(PHI_GRANTS_USERS, 0, struct phi_grants_user, reserved), 1), true);
        REFUSED(-EBADMSG, put32(d + le64toh(h.sections[PHI_GRANTS_BYUSER].offset), 4), true);
        REFUSED(-EBADMSG, put32(d + le64toh(h.sections[PHI_GRANTS_BYUSER].offset), 99), true);
        REFUSED(-EBADMSG, put32(d + le64toh(h.sections[PHI_GRANTS_BYGID].offset), 1), true);
        /* Strings: a name turned into root, one with a ':' or a NUL inside, a
         * length past the section. */
        {
                uint32_t ref;
                memcpy(&ref, data + le64toh(h.sections[PHI_GRANTS_USERS].offset) +
                                     offsetof(struct phi_grants_user, name), 4);
                ref = le32toh(ref);   /* "alice" */
                REFUSED(-EBADMSG, (put32(d + ref, 4), memcpy(d + ref + 2, "root", 5)), true);
                REFUSED(-EBADMSG, d[ref + 4] = ':', true);
                REFUSED(-EBADMSG, d[ref + 4] = 0, true);
                REFUSED(-EBADMSG, d[ref] = 200, true);
        }
        /* Truncated anywhere: refused. */
        for (size_t cut = 0; cut < size; cut += 7) {
                _cleanup_free_ uint8_t *c = NULL;
                assert_int_not_equal(open_copy(data, cut, &g, &c), 0);
        }
#undef REFUSED
#undef AT
}

/* Any single byte changed, checksums made to match: refused, or opened with
 * every lookup answering without a crash (the sanitizer build checks reads). */
static void test_every_byte(void **state) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        unsigned opened = 0, refused = 0;

        (void) state;
        data = encode(sample, PHI_ELEMENTSOF(sample), &size);
        for (size_t i = PHI_GRANTS_HEADER_SIZE; i < size; i++) {
                _cleanup_free_ uint8_t *c = NULL;
                uint8_t *d = malloc(size);
                phi_grants g;

                assert_non_null(d);
                memcpy(d, data, size);
                d[i] ^= 0x41;
                fix_checksums(d, size);
                if (open_copy(d, size, &g, &c) == 0) {
                        static const char *const names[] = { "alice", "bob", "carol", "phi-dba", "phi-ops" };
                        opened++;
                        for (size_t k = 0; k < PHI_ELEMENTSOF(names); k++) {
                                struct phi_grants_group_view gr;
                                struct phi_grants_user_view u;
                                struct phi_grant_view v;
                                if (phi_grants_group_by_name(&g, names[k], &gr) == 0)
                                        for (uint32_t j = 0; j < gr.count; j++)
                                                assert_int_equal(phi_grants_group_grant(&g, &gr, j, &v), 0);
                                if (phi_grants_user_by_name(&g, names[k], &u) == 0)
                                        for (uint32_t j = 0; j < u.count; j++)
                                                assert_int_equal(phi_grants_user_grant(&g, &u, j, &v), 0);
                        }
                } else {
                        refused++;
                }
                free(d);
        }
        /* Expiries and request ids may take any non-zero value; names may not. */
        assert_true(refused > 0);
        assert_true(opened > 0);
}

/* The reader hands out every grant; whether one is in force is decided with
 * the clock of the lookup, not by the file. */
static void test_expiry_at_read_time(void **state) {
        _cleanup_free_ uint8_t *data = NULL, *copy = NULL;
        struct phi_grants_group_view gr;
        struct phi_grant_view v;
        size_t size = 0;
        phi_grants g;

        (void) state;
        data = encode(sample, PHI_ELEMENTSOF(sample), &size);
        assert_int_equal(open_copy(data, size, &g, &copy), 0);
        assert_int_equal(phi_grants_group_by_name(&g, "phi-ops", &gr), 0);
        assert_int_equal(phi_grants_group_grant(&g, &gr, 1, &v), 0);
        assert_string_equal(v.user.s, "carol");
        assert_false(phi_grant_live(v.expires, NOW));          /* ended a second ago */
        assert_true(phi_grant_live(v.expires, NOW - 2));
        assert_int_equal(phi_grants_group_grant(&g, &gr, 0, &v), 0);
        assert_string_equal(v.user.s, "alice");
        assert_true(phi_grant_live(v.expires, NOW + 59));
        assert_false(phi_grant_live(v.expires, NOW + 60));     /* over at the second itself */
        assert_false(phi_grant_live(0, 0));
}

static void test_files(void **state) {
        char dir[] = "/tmp/phi-grants.XXXXXX", path[64], grants_path[80];
        const struct phi_grant_entry one = { "phi-dba", 30000, "alice", NOW + 1, 1 };
        phi_grants old, now;
        ino_t ino_old = 0, ino_new = 0;

        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/grants.snapshot", dir);
        assert_int_equal(phi_grants_map(path, &old, NULL, NULL), -ENOENT);

        assert_int_equal(phi_grants_write(path, &one, 1, 1000, 1), 0);
        assert_int_equal(phi_grants_map(path, &old, NULL, &ino_old), 0);
        assert_int_equal(old.n_grants, 1);
        assert_false(phi_grants_superseded(&old));
        /* A new publication replaces the file and marks the mapped one. */
        assert_int_equal(phi_grants_write(path, NULL, 0, 1000, 2), 0);
        assert_true(phi_grants_superseded(&old));
        assert_int_equal(phi_grants_map(path, &now, NULL, &ino_new), 0);
        assert_int_not_equal(ino_old, ino_new);
        assert_int_equal(now.generation, 2);
        assert_int_equal(now.n_grants, 0);
        phi_grants_unmap(&now);
        phi_grants_unmap(&old);
        assert_null(old.data);

        /* A refused write leaves the file in place. */
        {
                struct phi_grant_entry bad = one;
                bad.gid = 0;
                assert_int_equal(phi_grants_write(path, &bad, 1, 1000, 3), -EINVAL);
                assert_int_equal(phi_grants_map(path, &now, NULL, NULL), 0);
                assert_int_equal(now.generation, 2);
                phi_grants_unmap(&now);
        }
        /* Withdrawn: gone, the mapped copy marked; and nothing else is ever
         * removed in its place. */
        assert_int_equal(phi_grants_map(path, &old, NULL, NULL), 0);
        assert_int_equal(phi_grants_remove(path), 0);
        assert_true(phi_grants_superseded(&old));
        phi_grants_unmap(&old);
        assert_int_equal(phi_grants_map(path, &now, NULL, NULL), -ENOENT);
        assert_int_equal(phi_grants_remove(path), 0);
        {
                FILE *f = fopen(path, "we");
                assert_non_null(f);
                fputs("not a grants file\n", f);
                assert_int_equal(fclose(f), 0);
                assert_int_equal(phi_grants_remove(path), 0);
                assert_int_equal(access(path, F_OK), 0);
                assert_int_equal(phi_grants_write(path, NULL, 0, 1000, 4), 0);
        }

        /* Writable by others: not used. */
        assert_int_equal(chmod(path, 0666), 0);
        assert_int_equal(phi_grants_map(path, &now, NULL, NULL), -EPERM);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);

        /* Beside the identity snapshot. */
        assert_int_equal(phi_grants_path_for("/var/lib/phiaccessd/nss.snapshot", grants_path,
                                             sizeof(grants_path)), 0);
        assert_string_equal(grants_path, PHI_GRANTS_PATH);
        assert_int_equal(phi_grants_path_for("/nss.snapshot", grants_path, sizeof(grants_path)), 0);
        assert_string_equal(grants_path, "/grants.snapshot");
        assert_int_equal(phi_grants_path_for("nss.snapshot", grants_path, sizeof(grants_path)), 0);
        assert_string_equal(grants_path, "grants.snapshot");
        assert_int_equal(phi_grants_path_for("/var/lib/phiaccessd/nss.snapshot", grants_path, 10),
                         -ENAMETOOLONG);
        assert_int_equal(phi_grants_path_for("", grants_path, sizeof(grants_path)), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_writer_refuses),
                cmocka_unit_test(test_bounds),
                cmocka_unit_test(test_corrupt),
                cmocka_unit_test(test_every_byte),
                cmocka_unit_test(test_expiry_at_read_time),
                cmocka_unit_test(test_files),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

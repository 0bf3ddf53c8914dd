/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Corrupt snapshots: every one is refused or, where the damage is past what the
 * header check sees, makes lookups fail cleanly; none crashes or reads outside
 * the buffer (the sanitizer build runs this too, and each case works on an
 * exact-size heap copy so that ASan sees any overread). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <stdio.h>

#include "phi/snapshot.h"

static uint8_t *good;
static size_t good_size;

static int make_good(void **state) {
        phi_snapshot_builder *b = NULL;
        int r;

        (void) state;
        if (phi_snapshot_builder_new(&b) < 0)
                return -1;
        r = phi_snapshot_add_user(b, "alice", 1001, 5000, "Alice", "/home/alice", "/bin/bash");
        r = r ?: phi_snapshot_add_user(b, "bob", 1002, 5000, "Bob", "/home/bob", "/bin/sh");
        r = r ?: phi_snapshot_add_group(b, "staff", 5000);
        r = r ?: phi_snapshot_add_group(b, "dba", 5001);
        r = r ?: phi_snapshot_add_member(b, "staff", "alice", 0);
        r = r ?: phi_snapshot_add_member(b, "staff", "bob", 0);
        r = r ?: phi_snapshot_add_member(b, "dba", "alice", 1900000000);
        r = r ?: phi_snapshot_encode(b, 3, 1700000000, &good, &good_size);
        phi_snapshot_builder_free(b);
        return r;
}

static int free_good(void **state) {
        (void) state;
        free(good);
        return 0;
}

/* Every reader call, on whatever open_buffer() accepted. Results are not
 * checked: the point is that nothing crashes or overreads. Returns how many
 * lookups failed as corrupt. */
static unsigned exercise(const phi_snapshot *s) {
        static const char *const names[] = { "alice", "bob", "staff", "dba", "carol", "" };
        static const uint32_t ids[] = { 1001, 1002, 5000, 5001, 0, 4242 };
        unsigned bad = 0;

        for (size_t i = 0; i < PHI_ELEMENTSOF(names); i++) {
                struct phi_snapshot_user u;
                struct phi_snapshot_group g;
                struct phi_snapshot_memberof m;

                bad += phi_snapshot_user_by_name(s, names[i], &u) == -EBADMSG;
                bad += phi_snapshot_user_by_uid(s, ids[i], &u) == -EBADMSG;
                if (phi_snapshot_group_by_name(s, names[i], &g) == 0) {
                        for (uint32_t k = 0; k < g.n_members && k < 64; k++) {
                                struct phi_snapshot_str n;
                                uint64_t e;
                                bad += phi_snapshot_group_member(s, &g, k, &n, &e) == -EBADMSG;
                        }
                }
                bad += phi_snapshot_group_by_gid(s, ids[i], &g) == -EBADMSG;
                if (phi_snapshot_memberof_by_name(s, names[i], &m) == 0) {
                        for (uint32_t k = 0; k < m.count && k < 64; k++) {
                                gid_t gid;
                                uint64_t e;
                                bad += phi_snapshot_memberof_at(s, &m, k, &gid, &e) == -EBADMSG;
                        }
                }
        }
        for (uint32_t i = 0; i < s->n_users && i < 64; i++) {
                struct phi_snapshot_user u;
                bad += phi_snapshot_user_at(s, i, &u) == -EBADMSG;
        }
        for (uint32_t i = 0; i < s->n_groups && i < 64; i++) {
                struct phi_snapshot_group g;
                bad += phi_snapshot_group_at(s, i, &g) == -EBADMSG;
        }
        (void) phi_snapshot_superseded(s);
        {
                int v = phi_snapshot_verify(s);
                assert_true(v == 0 || v == -EBADMSG);
        }
        return bad;
}

static uint8_t *copy_of(size_t size) {
        uint8_t *p = malloc(size ? size : 1);

        assert_non_null(p);
        memcpy(p, good, size < good_size ? size : good_size);
        return p;
}

/* Rewrites the header checksum so that damage behind it reaches the later checks. */
static void reseal(uint8_t *p) {
        struct phi_snap_header h;

        memcpy(&h, p, sizeof(h));
        h.superseded = 0;
        h.header_checksum = 0;
        h.header_checksum = htole64(phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, &h, sizeof(h)));
        memcpy(p + offsetof(struct phi_snap_header, header_checksum), &h.header_checksum, 8);
}

static void test_good_is_good(void **state) {
        phi_snapshot s;

        (void) state;
        assert_int_equal(phi_snapshot_open_buffer(&s, good, good_size), 0);
        assert_int_equal(phi_snapshot_verify(&s), 0);
        assert_int_equal(exercise(&s), 0);
}

static void test_truncated(void **state) {
        phi_snapshot s;

        (void) state;
        assert_int_equal(phi_snapshot_open_buffer(&s, NULL, 0), -EBADMSG);
        for (size_t len = 0; len < good_size; len++) {
                _cleanup_free_ uint8_t *p = copy_of(len);
                assert_int_equal(phi_snapshot_open_buffer(&s, p, len), -EBADMSG);
        }
        /* Trailing garbage: the size is part of the header. */
        {
                _cleanup_free_ uint8_t *p = copy_of(good_size + 8);
                memset(p + good_size, 0, 8);
                assert_int_equal(phi_snapshot_open_buffer(&s, p, good_size + 8), -EBADMSG);
        }
}

static void test_header_bit_flips(void **state) {
        (void) state;
        for (size_t byte = 0; byte < PHI_SNAP_HEADER_SIZE; byte++) {
                for (int bit = 0; bit < 8; bit++) {
                        _cleanup_free_ uint8_t *p = copy_of(good_size);
                        phi_snapshot s;
                        int r;

                        p[byte] ^= (uint8_t) (1u << bit);
                        r = phi_snapshot_open_buffer(&s, p, good_size);
                        if (byte >= PHI_SNAP_SUPERSEDED_OFFSET && byte < PHI_SNAP_SUPERSEDED_OFFSET + 4) {
                                /* The one word outside the checksum, written by design. */
                                assert_int_equal(r, 0);
                                assert_true(phi_snapshot_superseded(&s));
                        } else if (byte >= offsetof(struct phi_snap_header, version) &&
                                   byte < offsetof(struct phi_snap_header, version) + 4) {
                                assert_int_equal(r, -EPROTONOSUPPORT);
                        } else {
                                assert_int_equal(r, -EBADMSG);
                        }
                }
        }
}

/* Header damage that the checksum would catch, resealed so that the structural
 * checks must catch it on their own. */
static void test_resealed_header(void **state) {
        static const struct {
                size_t off, width;
                uint64_t value;
        } cases[] = {
                { offsetof(struct phi_snap_header, file_size), 8, 1u << 20 },
                { offsetof(struct phi_snap_header, file_size), 8, 0 },
                { offsetof(struct phi_snap_header, header_size), 4, 64 },
                { offsetof(struct phi_snap_header, flags), 4, 1 },
                { offsetof(struct phi_snap_header, min_uid), 4, 0 },
                { offsetof(struct phi_snap_header, min_gid), 4, 0 },
                { offsetof(struct phi_snap_header, n_users), 4, 3 },
                { offsetof(struct phi_snap_header, n_users), 4, UINT32_MAX },
                { offsetof(struct phi_snap_header, n_groups), 4, 1 },
                { offsetof(struct phi_snap_header, n_members), 4, 100 },
                { offsetof(struct phi_snap_header, n_grouplist), 4, 0 },
                { offsetof(struct phi_snap_header, reserved), 1, 1 },
        };

        (void) state;
        for (size_t i = 0; i < PHI_ELEMENTSOF(cases); i++) {
                _cleanup_free_ uint8_t *p = copy_of(good_size);
                uint64_t v64 = htole64(cases[i].value);
                uint32_t v32 = htole32((uint32_t) cases[i].value);
                phi_snapshot s;

                if (cases[i].width == 8)
                        memcpy(p + cases[i].off, &v64, 8);
                else if (cases[i].width == 4)
                        memcpy(p + cases[i].off, &v32, 4);
                else
                        p[cases[i].off] = (uint8_t) cases[i].value;
                reseal(p);
                assert_int_equal(phi_snapshot_open_buffer(&s, p, good_size), -EBADMSG);
        }
}

/* Each section moved out of range, overlapping, misaligned, or resized. */
static void test_sections_out_of_range(void **state) {
        static const int64_t offset_delta[] = { 1, 8, -8, (int64_t) 1 << 40, -((int64_t) 1 << 40) };
        static const uint64_t sizes[] = { 1, 7, UINT64_MAX, UINT64_MAX - 7, 1u << 30 };

        (void) state;
        for (int sec = 0; sec < PHI_SNAP_SECTION_COUNT; sec++) {
                size_t at = offsetof(struct phi_snap_header, sections) + (size_t) sec * 16;

                for (size_t i = 0; i < PHI_ELEMENTSOF(offset_delta); i++) {
                        _cleanup_free_ uint8_t *p = copy_of(good_size);
                        uint64_t v;
                        phi_snapshot s;

                        memcpy(&v, p + at, 8);
                        v = htole64(le64toh(v) + (uint64_t) offset_delta[i]);
                        memcpy(p + at, &v, 8);
                        reseal(p);
                        /* A shift by 8 can still be well-formed for the last
                         * section when padding allows; then lookups must cope. */
                        if (phi_snapshot_open_buffer(&s, p, good_size) == 0)
                                (void) exercise(&s);
                }
                for (size_t i = 0; i < PHI_ELEMENTSOF(sizes); i++) {
                        _cleanup_free_ uint8_t *p = copy_of(good_size);
                        uint64_t v = htole64(sizes[i]);
                        phi_snapshot s;

                        memcpy(p + at + 8, &v, 8);
                        reseal(p);
                        if (phi_snapshot_open_buffer(&s, p, good_size) == 0)
                                (void) exercise(&s);
                }
        }
        /* Offsets far out of range are always refused. */
        for (int sec = 0; sec < PHI_SNAP_SECTION_COUNT; sec++) {
                _cleanup_free_ uint8_t *p = copy_of(good_size);
                uint64_t v = htole64(good_size + 8);
                phi_snapshot s;

                memcpy(p + offsetof(struct phi_snap_header, sections) + (size_t) sec * 16, &v, 8);
                reseal(p);
                assert_int_equal(phi_snapshot_open_buffer(&s, p, good_size), -EBADMSG);
        }
}

static void test_wrong_magic_and_version(void **state) {
        _cleanup_free_ uint8_t *p = copy_of(good_size), *q = copy_of(good_size);
        uint32_t v = htole32(PHI_SNAP_VERSION + 1);
        phi_snapshot s;

        (void) state;
        memcpy(p, "PHISNAQ\n", 8);
        reseal(p);
        assert_int_equal(phi_snapshot_open_buffer(&s, p, good_size), -EBADMSG);
        memcpy(q + offsetof(struct phi_snap_header, version), &v, 4);
        reseal(q);
        assert_int_equal(phi_snapshot_open_buffer(&s, q, good_size), -EPROTONOSUPPORT);
}

/* The previous format version, even with its shorter header, is "not
 * supported", never read with this version's layout. */
static void test_old_version(void **state) {
        _cleanup_free_ uint8_t *p = copy_of(good_size);
        uint32_t v = htole32(1);
        phi_snapshot s;

        (void) state;
        memcpy(p + offsetof(struct phi_snap_header, version), &v, 4);
        assert_int_equal(phi_snapshot_open_buffer(&s, p, good_size), -EPROTONOSUPPORT);
        assert_int_equal(phi_snapshot_open_buffer(&s, p, 288), -EPROTONOSUPPORT);
        assert_int_equal(phi_snapshot_open_buffer(&s, p, 16), -EPROTONOSUPPORT);
        assert_int_equal(phi_snapshot_open_buffer(&s, p, 11), -EBADMSG);
}

/* The list of allowed low primary gids, resealed into the header: a bad count,
 * 0, a gid not below min_gid (1000 here), a repeat, or junk in the unused tail. */
static void test_primary_gids_header(void **state) {
        static const struct {
                uint32_t n, gids[PHI_SNAP_MAX_PRIMARY_GIDS];
                int want;
        } cases[] = {
                { 1, { 100 }, 0 },
                { 2, { 100, 50 }, 0 },
                { PHI_SNAP_MAX_PRIMARY_GIDS + 1, { 100 }, -EBADMSG },
                { 1, { 0 }, -EBADMSG },
                { 1, { 1000 }, -EBADMSG },
                { 1, { UINT32_MAX }, -EBADMSG },
                { 2, { 100, 100 }, -EBADMSG },
                { 0, { 100 }, -EBADMSG },
                { 1, { 100, 0, 0, 0, 0, 0, 0, 27 }, -EBADMSG },
        };

        (void) state;
        for (size_t i = 0; i < PHI_ELEMENTSOF(cases); i++) {
                _cleanup_free_ uint8_t *p = copy_of(good_size);
                uint32_t n = htole32(cases[i].n);
                phi_snapshot s;

                memcpy(p + offsetof(struct phi_snap_header, n_primary_gids), &n, 4);
                for (size_t k = 0; k < PHI_SNAP_MAX_PRIMARY_GIDS; k++) {
                        uint32_t g = htole32(cases[i].gids[k]);
                        memcpy(p + offsetof(struct phi_snap_header, primary_gids) + k * 4, &g, 4);
                }
                reseal(p);
                assert_int_equal(phi_snapshot_open_buffer(&s, p, good_size), cases[i].want);
        }
}

/* A user record whose primary gid the header forbids (27, sudo's group) fails
 * full verification; lookups still find the record, and nss_phi does not serve
 * it (unit.test_snapshot_nss). */
static void test_low_primary_gid(void **state) {
        _cleanup_free_ uint8_t *p = copy_of(good_size);
        struct phi_snapshot_user u;
        uint32_t gid = htole32(27);
        phi_snapshot s;

        (void) state;
        assert_int_equal(phi_snapshot_open_buffer(&s, p, good_size), 0);
        memcpy(p + s.off[PHI_SNAP_USERS] + offsetof(struct phi_snap_user, gid), &gid, 4);
        /* With a matching body checksum, as a careful forger would write it. */
        {
                uint64_t sum = htole64(phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, p + PHI_SNAP_HEADER_SIZE,
                                                        good_size - PHI_SNAP_HEADER_SIZE));
                memcpy(p + offsetof(struct phi_snap_header, body_checksum), &sum, 8);
                reseal(p);
        }
        assert_int_equal(phi_snapshot_open_buffer(&s, p, good_size), 0);
        assert_int_equal(phi_snapshot_user_by_name(&s, "alice", &u), 0);
        assert_int_equal(u.gid, 27);
        assert_false(phi_snapshot_primary_gid_allowed(&s, u.gid));
        assert_int_equal(phi_snapshot_verify(&s), -EBADMSG);
}

/* Body damage is invisible to the header check: every single-bit flip in the
 * body must leave lookups safe, and full verification must notice it. */
static void test_body_bit_flips(void **state) {
        (void) state;
        for (size_t byte = PHI_SNAP_HEADER_SIZE; byte < good_size; byte++) {
                for (int bit = 0; bit < 8; bit++) {
                        _cleanup_free_ uint8_t *p = copy_of(good_size);
                        phi_snapshot s;

                        p[byte] ^= (uint8_t) (1u << bit);
                        assert_int_equal(phi_snapshot_open_buffer(&s, p, good_size), 0);
                        (void) exercise(&s);
                        assert_int_equal(phi_snapshot_verify(&s), -EBADMSG);
                }
        }
}

/* Hand-made hostile structures with a valid header: an index without an empty
 * slot (every probe must still end), a slot pointing past the records, and a
 * string reference outside the string section. */
static void test_hostile_body(void **state) {
        phi_snapshot s;
        struct phi_snapshot_user u;
        struct phi_snapshot_group g;

        (void) state;
        assert_int_equal(phi_snapshot_open_buffer(&s, good, good_size), 0);
        {
                _cleanup_free_ uint8_t *p = copy_of(good_size);
                phi_snapshot t;
                uint64_t off = s.off[PHI_SNAP_IDX_UID], n = s.len[PHI_SNAP_IDX_UID] / 8;
                for (uint64_t i = 0; i < n; i++) {
                        struct phi_snap_slot slot = { htole32(424242), htole32(0) };
                        memcpy(p + off + i * 8, &slot, 8);
                }
                assert_int_equal(phi_snapshot_open_buffer(&t, p, good_size), 0);
                assert_int_equal(phi_snapshot_user_by_uid(&t, 1001, &u), -ENOENT);
                assert_int_equal(phi_snapshot_user_by_uid(&t, 424242, &u), -EBADMSG);
        }
        {
                _cleanup_free_ uint8_t *p = copy_of(good_size);
                phi_snapshot t;
                uint64_t off = s.off[PHI_SNAP_IDX_GID], n = s.len[PHI_SNAP_IDX_GID] / 8;
                for (uint64_t i = 0; i < n; i++) {
                        struct phi_snap_slot slot = { htole32(5000), htole32(7777) };
                        memcpy(p + off + i * 8, &slot, 8);
                }
                assert_int_equal(phi_snapshot_open_buffer(&t, p, good_size), 0);
                assert_int_equal(phi_snapshot_group_by_gid(&t, 5000, &g), -EBADMSG);
        }
        {
                _cleanup_free_ uint8_t *p = copy_of(good_size);
                phi_snapshot t;
                uint32_t ref = htole32((uint32_t) good_size - 1);
                memcpy(p + s.off[PHI_SNAP_USERS], &ref, 4); /* alice's name */
                assert_int_equal(phi_snapshot_open_buffer(&t, p, good_size), 0);
                assert_int_equal(phi_snapshot_user_at(&t, 0, &u), -EBADMSG);
                assert_int_equal(phi_snapshot_user_by_uid(&t, 1001, &u), -EBADMSG);
                assert_int_equal(phi_snapshot_user_by_name(&t, "bob", &u), 0);
        }
        {
                /* A group claiming more members than exist. */
                _cleanup_free_ uint8_t *p = copy_of(good_size);
                phi_snapshot t;
                uint32_t n = htole32(UINT32_MAX);
                memcpy(p + s.off[PHI_SNAP_GROUPS] + 12, &n, 4);
                assert_int_equal(phi_snapshot_open_buffer(&t, p, good_size), 0);
                assert_int_equal(phi_snapshot_group_at(&t, 0, &g), -EBADMSG);
                assert_int_equal(phi_snapshot_group_by_name(&t, "staff", &g), -EBADMSG);
        }
        {
                /* A string whose length runs past its section. */
                _cleanup_free_ uint8_t *p = copy_of(good_size);
                phi_snapshot t;
                uint16_t len = htole16(PHI_SNAP_STR_MAX);
                uint32_t ref;
                memcpy(&ref, p + s.off[PHI_SNAP_USERS], 4);
                memcpy(p + le32toh(ref), &len, 2);
                assert_int_equal(phi_snapshot_open_buffer(&t, p, good_size), 0);
                assert_int_equal(phi_snapshot_user_by_uid(&t, 1001, &u), -EBADMSG);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good_is_good),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_header_bit_flips),
                cmocka_unit_test(test_resealed_header),
                cmocka_unit_test(test_sections_out_of_range),
                cmocka_unit_test(test_wrong_magic_and_version),
                cmocka_unit_test(test_old_version),
                cmocka_unit_test(test_primary_gids_header),
                cmocka_unit_test(test_low_primary_gid),
                cmocka_unit_test(test_body_bit_flips),
                cmocka_unit_test(test_hostile_body),
        };
        return cmocka_run_group_tests(tests, make_good, free_good);
}

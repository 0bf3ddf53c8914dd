/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libphi_audit's Merkle tree against RFC 6962's reference vectors (the 8-leaf
 * tree of certificate-transparency's tests) and roots computed independently
 * with Python's hashlib; the edge appender, its saved form, and inclusion and
 * consistency proofs for every tree size and index from 1 to 64, each proof
 * also refused when one bit of it, the index or a size is changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "phi/audit.h"

typedef uint8_t hash_t[PHI_AUDIT_HASH_SIZE];

static void unhex(const char *s, uint8_t *out, size_t n) {
        for (size_t i = 0; i < n; i++)
                assert_int_equal(sscanf(s + 2 * i, "%2hhx", &out[i]), 1);
}

static void assert_hash_hex(const uint8_t *h, const char *hex) {
        hash_t want;
        unhex(hex, want, sizeof(want));
        assert_memory_equal(h, want, sizeof(want));
}

/* certificate-transparency's reference leaves and the roots of sizes 1..8 */
static const char *const ct_leaves[] = { "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f" };
static const char *const ct_roots[] = {
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static hash_t ct_hashes[8];
static hash_t big[64];          /* leaf hashes of "leaf-0" .. "leaf-63" */

static int leaf_of(void *ud, uint64_t index, uint8_t ret[PHI_AUDIT_HASH_SIZE]) {
        memcpy(ret, ((hash_t *) ud)[index], PHI_AUDIT_HASH_SIZE);
        return 0;
}

static int setup(void **state) {
        (void) state;
        for (size_t i = 0; i < 8; i++) {
                uint8_t raw[16];
                size_t n = strlen(ct_leaves[i]) / 2;
                unhex(ct_leaves[i], raw, n);
                phi_audit_leaf_hash(raw, n, ct_hashes[i]);
        }
        for (size_t i = 0; i < 64; i++) {
                char s[16];
                int n = snprintf(s, sizeof(s), "leaf-%zu", i);
                phi_audit_leaf_hash(s, (size_t) n, big[i]);
        }
        return 0;
}

static void test_ct_roots(void **state) {
        struct phi_audit_tree t;
        hash_t root;
        (void) state;

        phi_audit_tree_init(&t);
        phi_audit_tree_root(&t, root);
        assert_hash_hex(root, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        for (size_t i = 0; i < 8; i++) {
                uint8_t raw[16];
                size_t n = strlen(ct_leaves[i]) / 2;
                unhex(ct_leaves[i], raw, n);
                assert_int_equal(phi_audit_tree_append(&t, raw, n), 0);
                phi_audit_tree_root(&t, root);
                assert_hash_hex(root, ct_roots[i]);
        }
}

/* Roots of the first n of "leaf-0".."leaf-63", from Python's hashlib and the
 * recursive MTH of RFC 6962 2.1 (written apart from this library). */
static void test_python_roots(void **state) {
        static const struct {
                unsigned n;
                const char *root;
        } want[] = {
                { 1, "305df59f9590c3c9ac63d2b2743c388e3792449078cebf7fb3dbe6471643b2b7" },
                { 2, "60a53eed0de87a90c8e59427c59c46253c33a76a09502a51801300927b7e6bdc" },
                { 3, "cf763a041c81ceef1578a6083f75c61bef2e0014f2a3e683a97fcfca5be7f19a" },
                { 7, "0b007fb915eb9b2a146f54b1c86ec53b664f8e455b7660b0b6ee13edc0d921c0" },
                { 31, "aab4ae4540feef0c96657b2b25243c835f384b2fd2a9ae5086bda4be167c7582" },
                { 33, "22924fa0fcb8ac3b8675a9719a021285fc622b3cedddd4eb5709ea9e8f2563e9" },
                { 63, "027464f4e28b8e27310b67636d2f1cc669598b42823ccfe253244acece1850a5" },
                { 64, "11206652df8512a0fbdc024270fcb6e4f72b5a9414f34e92f880242f6926f9a9" },
        };
        struct phi_audit_tree t, built;
        hash_t root;
        size_t k = 0;
        (void) state;

        phi_audit_tree_init(&t);
        for (unsigned n = 1; n <= 64; n++) {
                assert_int_equal(phi_audit_tree_append_hash(&t, big[n - 1]), 0);
                assert_int_equal(t.size, n);
                /* the edge built from the leaves is the edge appended */
                assert_int_equal(phi_audit_tree_build(n, leaf_of, big, &built), 0);
                hash_t a, b;
                phi_audit_tree_root(&t, a);
                phi_audit_tree_root(&built, b);
                assert_memory_equal(a, b, sizeof(a));
                if (k < sizeof(want) / sizeof(want[0]) && want[k].n == n) {
                        phi_audit_tree_root(&t, root);
                        assert_hash_hex(root, want[k].root);
                        k++;
                }
        }
        assert_int_equal(k, sizeof(want) / sizeof(want[0]));
}

static void test_save_restore(void **state) {
        uint8_t buf[PHI_AUDIT_TREE_SAVED_MAX];
        struct phi_audit_tree t, back;
        size_t len;
        (void) state;

        phi_audit_tree_init(&t);
        for (unsigned n = 0; n <= 64; n++) {
                hash_t a, b;
                assert_int_equal(phi_audit_tree_save(&t, buf, sizeof(buf), &len), 0);
                assert_int_equal(len, 9 + 32 * (size_t) __builtin_popcount(n));
                assert_int_equal(phi_audit_tree_restore(&back, buf, len), 0);
                assert_int_equal(back.size, n);
                phi_audit_tree_root(&t, a);
                phi_audit_tree_root(&back, b);
                assert_memory_equal(a, b, sizeof(a));
                /* the restored tree goes on as the original */
                if (n < 64) {
                        assert_int_equal(phi_audit_tree_append_hash(&back, big[n]), 0);
                        assert_int_equal(phi_audit_tree_append_hash(&t, big[n]), 0);
                        phi_audit_tree_root(&t, a);
                        phi_audit_tree_root(&back, b);
                        assert_memory_equal(a, b, sizeof(a));
                }
                /* refused: cut short, one byte more, another version */
                if (len > 9)
                        assert_int_equal(phi_audit_tree_restore(&back, buf, len - 1), -EBADMSG);
                assert_int_equal(phi_audit_tree_restore(&back, buf, len + 1), -EBADMSG);
                buf[0] = 0x02;
                assert_int_equal(phi_audit_tree_restore(&back, buf, len), -EBADMSG);
        }
        assert_int_equal(phi_audit_tree_save(&t, buf, 9, &len), -ENOBUFS);      /* size 64: one hash */
        assert_int_equal(phi_audit_tree_restore(&back, buf, 3), -EBADMSG);
}

static void test_ct_proofs(void **state) {
        static const char *const i0_8[] = { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                                            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                                            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" };
        static const char *const i5_8[] = { "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                                            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                                            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" };
        static const char *const c6_8[] = { "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                                            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                                            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" };
        static const char *const c2_5[] = { "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                                            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" };
        hash_t proof[PHI_AUDIT_CONSISTENCY_MAX], r5, r6, r8;
        size_t n;
        (void) state;

        unhex(ct_roots[4], r5, 32);
        unhex(ct_roots[5], r6, 32);
        unhex(ct_roots[7], r8, 32);
        assert_int_equal(phi_audit_inclusion_proof(0, 8, leaf_of, ct_hashes, proof, &n), 0);
        assert_int_equal(n, 3);
        for (size_t i = 0; i < 3; i++)
                assert_hash_hex(proof[i], i0_8[i]);
        assert_int_equal(phi_audit_inclusion_verify(0, 8, ct_hashes[0], (const hash_t *) proof, n, r8), 0);
        assert_int_equal(phi_audit_inclusion_proof(5, 8, leaf_of, ct_hashes, proof, &n), 0);
        assert_int_equal(n, 3);
        for (size_t i = 0; i < 3; i++)
                assert_hash_hex(proof[i], i5_8[i]);
        assert_int_equal(phi_audit_inclusion_verify(5, 8, ct_hashes[5], (const hash_t *) proof, n, r8), 0);
        assert_int_equal(phi_audit_inclusion_verify(4, 8, ct_hashes[5], (const hash_t *) proof, n, r8), -EBADMSG);

        assert_int_equal(phi_audit_consistency_proof(6, 8, leaf_of, ct_hashes, proof, &n), 0);
        assert_int_equal(n, 3);
        for (size_t i = 0; i < 3; i++)
                assert_hash_hex(proof[i], c6_8[i]);
        assert_int_equal(phi_audit_consistency_verify(6, 8, r6, r8, (const hash_t *) proof, n), 0);
        assert_int_equal(phi_audit_consistency_verify(6, 8, r5, r8, (const hash_t *) proof, n), -EBADMSG);
        assert_int_equal(phi_audit_consistency_proof(2, 5, leaf_of, ct_hashes, proof, &n), 0);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < 2; i++)
                assert_hash_hex(proof[i], c2_5[i]);
        hash_t r2;
        unhex(ct_roots[1], r2, 32);
        assert_int_equal(phi_audit_consistency_verify(2, 5, r2, r5, (const hash_t *) proof, n), 0);
}

static void flip(hash_t h) {
        h[7] ^= 0x10;
}

/* Every index of every size 1..64: the proof verifies, and refuses a changed
 * proof hash, a proof one hash short or long, the wrong leaf, index or size. */
static void test_inclusion_exhaustive(void **state) {
        hash_t proof[PHI_AUDIT_PROOF_MAX + 1], root, other;
        (void) state;

        for (uint64_t size = 1; size <= 64; size++) {
                struct phi_audit_tree t;
                assert_int_equal(phi_audit_tree_build(size, leaf_of, big, &t), 0);
                phi_audit_tree_root(&t, root);
                for (uint64_t m = 0; m < size; m++) {
                        size_t n;
                        assert_int_equal(phi_audit_inclusion_proof(m, size, leaf_of, big, proof, &n), 0);
                        assert_true(n <= 6);
                        assert_int_equal(phi_audit_inclusion_verify(m, size, big[m], (const hash_t *) proof, n, root), 0);
                        for (size_t i = 0; i < n; i++) {
                                flip(proof[i]);
                                assert_int_equal(phi_audit_inclusion_verify(m, size, big[m], (const hash_t *) proof, n, root),
                                                 -EBADMSG);
                                flip(proof[i]);
                        }
                        if (n > 0)
                                assert_int_equal(phi_audit_inclusion_verify(m, size, big[m], (const hash_t *) proof, n - 1, root),
                                                 -EBADMSG);
                        memcpy(proof[n], big[0], sizeof(hash_t));
                        assert_int_equal(phi_audit_inclusion_verify(m, size, big[m], (const hash_t *) proof, n + 1, root),
                                         -EBADMSG);
                        assert_int_equal(phi_audit_inclusion_verify(m, size, big[(m + 1) % 64], (const hash_t *) proof, n, root),
                                         -EBADMSG);
                        if (size > 1)
                                assert_int_equal(phi_audit_inclusion_verify((m + 1) % size, size, big[m],
                                                                            (const hash_t *) proof, n, root),
                                                 -EBADMSG);
                        if (size < 64) {
                                /* the same proof against the next tree size's root */
                                struct phi_audit_tree t2;
                                assert_int_equal(phi_audit_tree_build(size + 1, leaf_of, big, &t2), 0);
                                phi_audit_tree_root(&t2, other);
                                assert_int_equal(phi_audit_inclusion_verify(m, size + 1, big[m], (const hash_t *) proof, n, other),
                                                 -EBADMSG);
                        }
                }
                assert_int_equal(phi_audit_inclusion_proof(size, size, leaf_of, big, proof, &(size_t){ 0 }), -EINVAL);
                assert_int_equal(phi_audit_inclusion_verify(size, size, big[0], (const hash_t *) proof, 0, root), -EINVAL);
        }
}

/* Every pair 1 <= m <= n <= 64: the proof verifies, and refuses a changed hash,
 * a hash dropped, the wrong first or second root, and the other sizes. */
static void test_consistency_exhaustive(void **state) {
        hash_t roots[65], proof[PHI_AUDIT_CONSISTENCY_MAX];
        (void) state;

        for (uint64_t n = 0; n <= 64; n++) {
                struct phi_audit_tree t;
                assert_int_equal(phi_audit_tree_build(n, leaf_of, big, &t), 0);
                phi_audit_tree_root(&t, roots[n]);
        }
        for (uint64_t second = 1; second <= 64; second++) {
                for (uint64_t first = 0; first <= second; first++) {
                        size_t n;
                        assert_int_equal(phi_audit_consistency_proof(first, second, leaf_of, big, proof, &n), 0);
                        assert_int_equal(n == 0, first == 0 || first == second);
                        assert_true(n <= 12);
                        assert_int_equal(phi_audit_consistency_verify(first, second, roots[first], roots[second],
                                                                      (const hash_t *) proof, n),
                                         0);
                        if (first == 0)
                                continue;
                        for (size_t i = 0; i < n; i++) {
                                flip(proof[i]);
                                assert_int_equal(phi_audit_consistency_verify(first, second, roots[first], roots[second],
                                                                              (const hash_t *) proof, n),
                                                 -EBADMSG);
                                flip(proof[i]);
                        }
                        if (n > 0)
                                assert_int_equal(phi_audit_consistency_verify(first, second, roots[first], roots[second],
                                                                              (const hash_t *) proof, n - 1),
                                                 -EBADMSG);
                        /* another first root (a rewritten history), another second root */
                        assert_int_equal(phi_audit_consistency_verify(first, second, roots[first - 1], roots[second],
                                                                      (const hash_t *) proof, n),
                                         -EBADMSG);
                        if (first < second) {
                                assert_int_equal(phi_audit_consistency_verify(first, second, roots[first], roots[second - 1],
                                                                              (const hash_t *) proof, n),
                                                 -EBADMSG);
                                if (second < 64)
                                        assert_int_equal(phi_audit_consistency_verify(first, second + 1, roots[first],
                                                                                      roots[second + 1],
                                                                                      (const hash_t *) proof, n),
                                                         -EBADMSG);
                        }
                }
                assert_int_equal(phi_audit_consistency_proof(second + 1, second, leaf_of, big, proof, &(size_t){ 0 }), -EINVAL);
        }
}

/* A leaf callback's error stops a proof with that error. */
static int failing_leaf(void *ud, uint64_t index, uint8_t ret[PHI_AUDIT_HASH_SIZE]) {
        (void) ud;
        (void) ret;
        return index == 5 ? -EIO : leaf_of(big, index, ret);
}

static void test_callback_error(void **state) {
        hash_t proof[PHI_AUDIT_CONSISTENCY_MAX];
        struct phi_audit_tree t;
        size_t n;
        (void) state;

        assert_int_equal(phi_audit_inclusion_proof(0, 8, failing_leaf, NULL, proof, &n), -EIO);
        assert_int_equal(phi_audit_consistency_proof(3, 8, failing_leaf, NULL, proof, &n), -EIO);
        assert_int_equal(phi_audit_tree_build(8, failing_leaf, NULL, &t), -EIO);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ct_roots),
                cmocka_unit_test(test_python_roots),
                cmocka_unit_test(test_save_restore),
                cmocka_unit_test(test_ct_proofs),
                cmocka_unit_test(test_inclusion_exhaustive),
                cmocka_unit_test(test_consistency_exhaustive),
                cmocka_unit_test(test_callback_error),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}

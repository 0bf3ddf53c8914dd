/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The export and its offline verification: untouched exports of every shape
 * verify, and each way of tampering with one is refused with the first bad
 * sequence number named: one field of one record changed, a record deleted in
 * the middle, the newest records deleted, two records swapped, re-signed with
 * another key, and the subtler ones (hashes rewritten, renumbered, a record
 * inserted, the last checkpoint or the header's hashes changed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "phi/audit.h"

#include "../tools/audit_synth.h"

#define ORIGIN "db1.clinic.example/audit"

static struct phi_audit_signer signer, stranger;
static struct phi_audit_verifier trusted;

static int setup(void **state) {
        char sk[PHI_AUDIT_SKEY_MAX], vk[PHI_AUDIT_VKEY_MAX];
        const char *error;
        (void) state;

        if (phi_audit_keygen(ORIGIN, sk, vk) < 0 || phi_audit_signer_parse(sk, strlen(sk), &signer, &error) < 0 ||
            phi_audit_verifier_parse(vk, strlen(vk), &trusted, &error) < 0 || phi_audit_keygen(ORIGIN, sk, vk) < 0 ||
            phi_audit_signer_parse(sk, strlen(sk), &stranger, &error) < 0)
                return -1;
        return 0;
}

static int teardown(void **state) {
        (void) state;
        phi_audit_signer_wipe(&signer);
        phi_audit_signer_wipe(&stranger);
        return 0;
}

/* An export as lines, to tamper with. */
struct lines {
        char *v[256];
        size_t n;
};

static void split(const char *data, size_t len, struct lines *l) {
        l->n = 0;
        for (size_t pos = 0; pos < len;) {
                const char *end = memchr(data + pos, '\n', len - pos);
                assert_non_null(end);
                assert_true(l->n < 256);
                l->v[l->n++] = strndup(data + pos, (size_t) (end - data - pos));
                pos = (size_t) (end - data) + 1;
        }
}

static char *join(const struct lines *l, size_t *ret_len) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        for (size_t i = 0; i < l->n; i++)
                if (l->v[i])
                        fprintf(f, "%s\n", l->v[i]);
        fclose(f);
        *ret_len = len;
        return out;
}

static void drop(struct lines *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        l->n = 0;
}

static char *export_of(const struct phi_audit_signer *s, uint64_t n, uint64_t first, uint64_t end, uint64_t every,
                       struct lines *l) {
        size_t len;
        char *data = synth_export(s, ORIGIN, n, first, end, every, &len);
        split(data, len, l);
        return data;
}

/* The line index of record seq in an export whose records start at `first`
 * with checkpoint lines after every `every` records. */
static size_t line_of(uint64_t seq, uint64_t first, uint64_t every) {
        size_t line = 1 + (size_t) (seq - first);
        if (every)
                for (uint64_t size = first + 1; size <= seq; size++)
                        line += size % every == 0;
        return line;
}

/* Rewrites a record line with its leaf's hash recomputed (a careful tamperer). */
static void rehash(struct lines *l, size_t i) {
        char *leaf = strstr(l->v[i], "\"leaf\":") + 7, line[PHI_AUDIT_EXPORT_LINE_MAX];
        size_t len;
        assert_int_equal(phi_audit_export_record(leaf, strlen(leaf) - 1, line, sizeof(line), &len), 0);
        line[len - 1] = '\0';
        free(l->v[i]);
        l->v[i] = strdup(line);
}

static void replace_in(struct lines *l, size_t i, const char *from, const char *to) {
        char *p = strstr(l->v[i], from), *s;
        assert_non_null(p);
        assert_true(asprintf(&s, "%.*s%s%s", (int) (p - l->v[i]), l->v[i], to, p + strlen(from)) > 0);
        free(l->v[i]);
        l->v[i] = s;
}

static void expect_ok(const char *data, size_t len, uint64_t first, uint64_t records, uint64_t tree_size) {
        struct phi_audit_export_result res;
        int r = phi_audit_export_verify(data, len, &trusted, 1, &res);
        if (r < 0)
                fprintf(stderr, "refused: %s\n", res.what);
        assert_int_equal(r, 0);
        assert_int_equal(res.first, first);
        assert_int_equal(res.records, records);
        assert_int_equal(res.tree_size, tree_size);
        assert_string_equal(res.origin, ORIGIN);
        assert_string_equal(res.key, ORIGIN);
}

static void expect_bad(const struct lines *l, int64_t seq, const char *want) {
        struct phi_audit_export_result res;
        size_t len;
        char *data = join(l, &len);
        int r = phi_audit_export_verify(data, len, &trusted, 1, &res);

        if (r != -EBADMSG || res.has_bad_seq != (seq >= 0) || (seq >= 0 && res.bad_seq != (uint64_t) seq) ||
            !strstr(res.what, want))
                fprintf(stderr, "want record %lld '%s', got %d, %s %llu: %s\n", (long long) seq, want, r,
                        res.has_bad_seq ? "record" : "no record", (unsigned long long) res.bad_seq, res.what);
        assert_int_equal(r, -EBADMSG);
        assert_int_equal(res.has_bad_seq, seq >= 0);
        if (seq >= 0) {
                assert_int_equal(res.bad_seq, (uint64_t) seq);
                /* the sentence starts by naming it, as phictl prints it */
                char head[64];
                snprintf(head, sizeof(head), "record %lld:", (long long) seq);
                assert_int_equal(strncmp(res.what, head, strlen(head)), 0);
        }
        assert_non_null(strstr(res.what, want));
        free(data);
}

static void test_untouched(void **state) {
        struct lines l;
        char *d;
        size_t len;
        (void) state;

        /* whole logs, with and without intermediate checkpoints, of several sizes */
        for (uint64_t n = 0; n <= 33; n += 11)
                for (uint64_t every = 0; every <= 4; every += 4) {
                        d = synth_export(&signer, ORIGIN, n, 0, n, every, &len);
                        expect_ok(d, len, 0, n, n);
                        free(d);
                }
        /* a range that starts and ends inside the tree: the left hashes and the
         * consistency proof tie it to the signed root */
        for (uint64_t first = 0; first <= 20; first += 3)
                for (uint64_t end = first; end <= 20; end += 4) {
                        if (first == 0 && end == 0)
                                continue;       /* nothing from 0 to 0 of a bigger tree: refused below */
                        d = synth_export(&signer, ORIGIN, 20, first, end, 5, &len);
                        expect_ok(d, len, first, end - first, 20);
                        free(d);
                }
        /* several trusted keys: one of them signed */
        struct phi_audit_verifier keys[2] = { trusted, trusted };
        keys[0].id ^= 1;
        struct phi_audit_export_result res;
        d = export_of(&signer, 10, 0, 10, 0, &l);
        assert_int_equal(phi_audit_export_verify(d, strlen(d), keys, 2, &res), 0);
        assert_int_equal(phi_audit_export_verify(d, strlen(d), keys, 0, &res), -EINVAL);
        free(d);
        drop(&l);
}

static void test_field_changed(void **state) {
        struct lines l;
        (void) state;

        free(export_of(&signer, 20, 0, 20, 0, &l));
        replace_in(&l, line_of(13, 0, 0), "user13", "user14");
        expect_bad(&l, 13, "do not match the hash beside it");
        drop(&l);

        /* the same with the hash rewritten: the checkpoint after it fails, and
         * the report names the first record that checkpoint covers */
        free(export_of(&signer, 20, 0, 20, 5, &l));
        replace_in(&l, line_of(13, 0, 5), "user13", "user14");
        rehash(&l, line_of(13, 0, 5));
        expect_bad(&l, 10, "do not match the checkpoint");
        drop(&l);

        /* only the stated hash changed: the record's line is still to blame */
        free(export_of(&signer, 20, 0, 20, 0, &l));
        char *h = strstr(l.v[line_of(4, 0, 0)], "\"hash\":\"") + 8;
        h[3] = h[3] == 'A' ? 'B' : 'A';
        expect_bad(&l, 4, "do not match the hash beside it");
        drop(&l);

        /* a field made non-canonical (a space), a field added */
        free(export_of(&signer, 20, 0, 20, 0, &l));
        replace_in(&l, line_of(2, 0, 0), "\"seq\":2", "\"seq\": 2");
        expect_bad(&l, 2, "line 4: expected a decimal number");
        drop(&l);
}

static void test_deleted_middle(void **state) {
        struct lines l;
        (void) state;

        free(export_of(&signer, 20, 0, 20, 0, &l));
        free(l.v[line_of(7, 0, 0)]);
        l.v[line_of(7, 0, 0)] = NULL;
        expect_bad(&l, 7, "holds record 8 instead");
        drop(&l);

        /* deleted and the rest renumbered, hashes rewritten: the checkpoint of
         * the records around it no longer adds up */
        free(export_of(&signer, 20, 0, 20, 5, &l));
        size_t gone = line_of(7, 0, 5);
        for (uint64_t seq = 8; seq < 20; seq++) {
                size_t i = line_of(seq, 0, 5);
                char from[32], to[32];
                snprintf(from, sizeof(from), "\"seq\":%llu,", (unsigned long long) seq);
                snprintf(to, sizeof(to), "\"seq\":%llu,", (unsigned long long) seq - 1);
                replace_in(&l, i, from, to);
                rehash(&l, i);
        }
        free(l.v[gone]);
        l.v[gone] = NULL;
        expect_bad(&l, 5, "do not add up");
        drop(&l);

        /* a checkpoint after every record (the daemon's urgent ones): the
         * deleted record stands between two checkpoints, everything before it
         * covered, and is still the one named */
        free(export_of(&signer, 20, 0, 20, 1, &l));
        gone = line_of(7, 0, 1);
        free(l.v[gone]);
        l.v[gone] = NULL;
        expect_bad(&l, 7, "do not add up");
        drop(&l);
}

static void test_newest_deleted(void **state) {
        struct lines l;
        (void) state;

        free(export_of(&signer, 20, 0, 20, 0, &l));
        for (uint64_t seq = 17; seq < 20; seq++) {
                free(l.v[line_of(seq, 0, 0)]);
                l.v[line_of(seq, 0, 0)] = NULL;
        }
        expect_bad(&l, 17, "newest records were deleted");
        drop(&l);

        /* the last checkpoint deleted too: the records after the one before are unproven */
        free(export_of(&signer, 20, 0, 20, 8, &l));
        free(l.v[l.n - 1]);
        l.v[l.n - 1] = NULL;
        expect_bad(&l, 16, "not covered by a signed checkpoint");
        drop(&l);

        /* cut in the middle of a line */
        size_t len;
        char *d = synth_export(&signer, ORIGIN, 20, 0, 20, 0, &len);
        struct phi_audit_export_result res;
        assert_int_equal(phi_audit_export_verify(d, len - 10, &trusted, 1, &res), -EBADMSG);
        assert_non_null(strstr(res.what, "does not end in a newline"));
        free(d);
}

static void test_swapped(void **state) {
        struct lines l;
        (void) state;

        free(export_of(&signer, 20, 0, 20, 0, &l));
        char *t = l.v[line_of(4, 0, 0)];
        l.v[line_of(4, 0, 0)] = l.v[line_of(9, 0, 0)];
        l.v[line_of(9, 0, 0)] = t;
        expect_bad(&l, 4, "holds record 9 instead");
        drop(&l);

        /* neighbours swapped and renumbered to hide it, hashes rewritten */
        free(export_of(&signer, 20, 0, 20, 0, &l));
        size_t a = line_of(11, 0, 0), b = line_of(12, 0, 0);
        replace_in(&l, a, "\"seq\":11,", "\"seq\":12,");
        replace_in(&l, b, "\"seq\":12,", "\"seq\":11,");
        rehash(&l, a);
        rehash(&l, b);
        t = l.v[a];
        l.v[a] = l.v[b];
        l.v[b] = t;
        expect_bad(&l, 0, "do not match the checkpoint");
        drop(&l);

        /* a record inserted (a copy of another) */
        free(export_of(&signer, 20, 0, 20, 0, &l));
        free(l.v[line_of(6, 0, 0)]);
        l.v[line_of(6, 0, 0)] = strdup(l.v[line_of(5, 0, 0)]);
        expect_bad(&l, 6, "holds record 5 instead");
        drop(&l);
}

static void test_resigned(void **state) {
        struct lines l;
        (void) state;

        /* the same records, signed by another key of the same name */
        free(export_of(&stranger, 20, 0, 20, 0, &l));
        expect_bad(&l, 0, "no signature by a trusted key");
        drop(&l);
        free(export_of(&stranger, 20, 6, 14, 4, &l));
        expect_bad(&l, 6, "no signature by a trusted key");
        drop(&l);

        /* the checkpoint's text changed: its signature fails */
        free(export_of(&signer, 20, 0, 20, 0, &l));
        replace_in(&l, l.n - 1, "\\u000a20\\u000a", "\\u000a19\\u000a");
        expect_bad(&l, 0, "does not verify");
        drop(&l);
}

static void test_structure(void **state) {
        struct lines l;
        (void) state;

        /* the header's left hashes changed: the records verify, the tree does not */
        free(export_of(&signer, 20, 7, 15, 0, &l));
        char *h = strstr(l.v[0], "\"left\":[\"") + 9;
        h[2] = h[2] == 'A' ? 'B' : 'A';
        expect_bad(&l, 7, "not part of the tree");
        drop(&l);
        free(export_of(&signer, 20, 7, 15, 0, &l));
        replace_in(&l, 0, "\"first\":7", "\"first\":6");
        expect_bad(&l, -1, "left subtree hashes");
        drop(&l);
        free(export_of(&signer, 20, 0, 20, 0, &l));
        replace_in(&l, 0, "phi-audit-export\":1", "phi-audit-export\":2");
        expect_bad(&l, -1, "not the header");
        drop(&l);
        /* the consistency proof of a range changed */
        free(export_of(&signer, 20, 0, 15, 0, &l));
        h = strstr(l.v[l.n - 1], "\"proof\":[\"") + 10;
        h[5] = h[5] == 'A' ? 'B' : 'A';
        expect_bad(&l, 0, "consistency proof fails");
        drop(&l);
        /* a checkpoint moved after records it does not cover */
        free(export_of(&signer, 20, 0, 20, 5, &l));
        size_t at = line_of(5, 0, 5) - 1;       /* the checkpoint of size 5 */
        char *cp = l.v[at];
        l.v[at] = l.v[at + 1];
        l.v[at + 1] = l.v[at + 2];
        l.v[at + 2] = cp;
        expect_bad(&l, 5, "stands before the checkpoint");
        drop(&l);
        /* a record after a checkpoint for a larger tree */
        free(export_of(&signer, 20, 0, 15, 0, &l));
        l.v[l.n] = l.v[l.n - 1];      /* the checkpoint, moved */
        l.v[l.n - 1] = strdup(l.v[l.n - 2]);
        replace_in(&l, l.n - 1, "\"seq\":14,", "\"seq\":15,");
        rehash(&l, l.n - 1);
        cp = l.v[l.n - 1];
        l.v[l.n - 1] = l.v[l.n];
        l.v[l.n] = cp;
        l.n++;
        expect_bad(&l, 0, "must be the export's last line");
        drop(&l);
        /* a line that is neither */
        free(export_of(&signer, 20, 0, 20, 0, &l));
        free(l.v[3]);
        l.v[3] = strdup("{\"comment\":\"hello\"}");
        expect_bad(&l, 2, "neither a record nor a checkpoint");
        drop(&l);
        /* no checkpoint at all, nothing at all */
        free(export_of(&signer, 0, 0, 0, 0, &l));
        free(l.v[1]);
        l.v[1] = NULL;
        expect_bad(&l, -1, "no signed checkpoint");
        drop(&l);
        /* the range from 0 to 0 of a tree of 20: nothing proven, everything deleted */
        free(export_of(&signer, 20, 0, 0, 0, &l));
        expect_bad(&l, 0, "newest records were deleted");
        drop(&l);
        struct phi_audit_export_result res;
        assert_int_equal(phi_audit_export_verify("", 0, &trusted, 1, &res), -EBADMSG);
        assert_non_null(strstr(res.what, "empty"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_untouched),     cmocka_unit_test(test_field_changed),
                cmocka_unit_test(test_deleted_middle), cmocka_unit_test(test_newest_deleted),
                cmocka_unit_test(test_swapped),       cmocka_unit_test(test_resigned),
                cmocka_unit_test(test_structure),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

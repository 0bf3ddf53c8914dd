/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The journal budget of callers: a burst per uid and interval, a global one
 * over all uids, a fixed table, and summaries that account for every entry
 * held back (written + suppressed = all that came). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ratelimit.h"

#define MAX_SUMMARIES 16

struct seen {
        size_t n;
        struct phi_ratelimit_summary s[MAX_SUMMARIES];
        char names[MAX_SUMMARIES][64];
};

static void record(void *userdata, const struct phi_ratelimit_summary *s) {
        struct seen *seen = userdata;

        assert_true(seen->n < MAX_SUMMARIES);
        seen->s[seen->n] = *s;
        snprintf(seen->names[seen->n], sizeof(seen->names[0]), "%s", s->name);
        seen->s[seen->n].name = seen->names[seen->n];
        seen->n++;
}

static void test_burst_per_uid(void **state) {
        phi_ratelimit *rl = NULL;
        struct seen seen = { 0 };
        struct phi_ratelimit_stats st;
        unsigned written = 0;

        (void) state;
        assert_int_equal(phi_ratelimit_new(10, 100, 8, &rl), 0);
        for (int i = 0; i < 3500; i++)
                written += phi_ratelimit_admit(rl, 65534, "nobody");
        assert_int_equal(written, 10);
        /* Another uid has its own burst. */
        assert_true(phi_ratelimit_admit(rl, 2001, "alice"));
        assert_int_equal(phi_ratelimit_flush(rl, record, &seen), 1);
        assert_int_equal(seen.n, 1);
        assert_int_equal(seen.s[0].uid, 65534);
        assert_string_equal(seen.s[0].name, "nobody");
        assert_int_equal(seen.s[0].written, 10);
        assert_int_equal(seen.s[0].suppressed, 3490);
        phi_ratelimit_get_stats(rl, &st);
        assert_int_equal(st.written, 11);
        assert_int_equal(st.suppressed, 3490);
        assert_int_equal(st.summaries, 1);
        assert_int_equal(st.tracked, 0);
        /* A new interval: the burst is back, nothing left to summarise. */
        assert_true(phi_ratelimit_admit(rl, 65534, "nobody"));
        seen.n = 0;
        assert_int_equal(phi_ratelimit_flush(rl, record, &seen), 0);
        phi_ratelimit_free(rl);
}

static void test_global_burst(void **state) {
        phi_ratelimit *rl = NULL;
        struct seen seen = { 0 };
        uint64_t written = 0, suppressed = 0;

        (void) state;
        assert_int_equal(phi_ratelimit_new(10, 25, 8, &rl), 0);
        /* Four uids of ten each: only 25 written over all of them. */
        for (uid_t u = 1000; u < 1004; u++)
                for (int i = 0; i < 10; i++)
                        written += phi_ratelimit_admit(rl, u, NULL);
        assert_int_equal(written, 25);
        assert_int_equal(phi_ratelimit_flush(rl, record, &seen), 2);
        for (size_t i = 0; i < seen.n; i++) {
                suppressed += seen.s[i].suppressed;
                assert_string_equal(seen.s[i].name, "");
        }
        /* uid 1002 got 5 through, uid 1003 none. */
        assert_int_equal(seen.s[0].uid, 1002);
        assert_int_equal(seen.s[0].written, 5);
        assert_int_equal(seen.s[1].uid, 1003);
        assert_int_equal(seen.s[1].written, 0);
        assert_int_equal(suppressed, 15);
        phi_ratelimit_free(rl);
}

static void test_table_full(void **state) {
        phi_ratelimit *rl = NULL;
        struct seen seen = { 0 };
        uint64_t written = 0, total = 0;

        (void) state;
        assert_int_equal(phi_ratelimit_new(2, 1000, 4, &rl), 0);
        /* 100 uids, three entries each: four are tracked, the rest share
         * the bucket of others (global burst only). */
        for (uid_t u = 5000; u < 5100; u++)
                for (int i = 0; i < 3; i++)
                        written += phi_ratelimit_admit(rl, u, "x");
        assert_int_equal(written, 4 * 2 + 96 * 3);
        assert_int_equal(phi_ratelimit_flush(rl, record, &seen), 4);
        for (size_t i = 0; i < seen.n; i++) {
                assert_int_equal(seen.s[i].uid, 5000 + i);
                total += seen.s[i].suppressed + seen.s[i].written;
        }
        assert_int_equal(total, 4 * 3);

        /* With the global burst spent, the others' bucket is summarised too. */
        phi_ratelimit_free(rl);
        assert_int_equal(phi_ratelimit_new(2, 10, 4, &rl), 0);
        written = total = 0;
        for (uid_t u = 5000; u < 5100; u++)
                for (int i = 0; i < 3; i++)
                        written += phi_ratelimit_admit(rl, u, "x");
        assert_int_equal(written, 8 + 2);
        seen.n = 0;
        assert_int_equal(phi_ratelimit_flush(rl, record, &seen), 5);
        assert_int_equal(seen.s[4].uid, PHI_RATELIMIT_OTHERS);
        assert_string_equal(seen.s[4].name, "");
        for (size_t i = 0; i < seen.n; i++)
                total += seen.s[i].suppressed + seen.s[i].written;
        assert_int_equal(total, 300);
        phi_ratelimit_free(rl);
}

static void test_bad_arguments(void **state) {
        phi_ratelimit *rl = NULL;

        (void) state;
        assert_int_equal(phi_ratelimit_new(0, 1, 1, &rl), -EINVAL);
        assert_int_equal(phi_ratelimit_new(1, 0, 1, &rl), -EINVAL);
        assert_int_equal(phi_ratelimit_new(1, 1, 0, &rl), -EINVAL);
        assert_null(rl);
        phi_ratelimit_free(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_burst_per_uid),
                cmocka_unit_test(test_global_burst),
                cmocka_unit_test(test_table_full),
                cmocka_unit_test(test_bad_arguments),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "phi/parse.h"
#include "phi/secret.h"

static void test_u64(void **state) {
        static const char *const bad[] = { "", " 1", "1 ", "+1", "-1", "0x10", "010", "1e3", "١" };
        uint64_t v = 77;

        (void) state;
        assert_int_equal(phi_parse_u64("0", 0, 10, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(phi_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(phi_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
        assert_int_equal(phi_parse_u64("11", 0, 10, &v), -ERANGE);
        assert_int_equal(phi_parse_u64("4", 5, 10, &v), -ERANGE);
        v = 77;
        for (size_t i = 0; i < PHI_ELEMENTSOF(bad); i++)
                assert_int_equal(phi_parse_u64(bad[i], 0, UINT64_MAX, &v), -EINVAL);
        assert_int_equal(v, 77); /* untouched on failure */
}

static void test_duration(void **state) {
        static const char *const bad[] = { "", "s", "30", "30x", "30mm", "1h30m", "-5m",
                                           " 5m", "5 m", "5M", "05m" };
        uint64_t v = 0;

        (void) state;
        assert_int_equal(phi_parse_duration("90s", 0, UINT64_MAX, &v), 0);
        assert_int_equal(v, 90);
        assert_int_equal(phi_parse_duration("30m", 0, UINT64_MAX, &v), 0);
        assert_int_equal(v, 1800);
        assert_int_equal(phi_parse_duration("4h", 0, UINT64_MAX, &v), 0);
        assert_int_equal(v, 14400);
        assert_int_equal(phi_parse_duration("7d", 0, UINT64_MAX, &v), 0);
        assert_int_equal(v, 604800);
        assert_int_equal(phi_parse_duration("0s", 0, 10, &v), 0);
        assert_int_equal(phi_parse_duration("8d", 0, 7 * 86400, &v), -ERANGE);
        assert_int_equal(phi_parse_duration("0m", 60, 3600, &v), -ERANGE);
        assert_int_equal(phi_parse_duration("999999999999999999d", 0, UINT64_MAX, &v), -ERANGE);
        for (size_t i = 0; i < PHI_ELEMENTSOF(bad); i++)
                assert_int_equal(phi_parse_duration(bad[i], 0, UINT64_MAX, &v), -EINVAL);
}

static void test_format_duration(void **state) {
        char buf[24];

        (void) state;
        assert_string_equal(phi_format_duration(0, buf), "0s");
        assert_string_equal(phi_format_duration(45, buf), "45s");
        assert_string_equal(phi_format_duration(5400, buf), "1h30m");
        assert_string_equal(phi_format_duration(7 * 86400 + 3600 + 5, buf), "7d1h");
        assert_string_equal(phi_format_duration(UINT64_MAX, buf), "213503982334601d7h");
}

static void test_names(void **state) {
        static const char *const good[] = { "alice", "a", "_svc", "j.doe", "mary-ann", "host01$",
                                            "Admin", "1password", "abcdefghijklmnopqrstuvwxyz012345" };
        static const char *const bad[] = { "", "-alice", ".hidden", "al ice", "al:ice", "al/ice",
                                           "1234", "a$b", "$", "élodie", "root\n",
                                           "abcdefghijklmnopqrstuvwxyz0123456" };

        (void) state;
        for (size_t i = 0; i < PHI_ELEMENTSOF(good); i++)
                assert_true(phi_name_valid(good[i]));
        for (size_t i = 0; i < PHI_ELEMENTSOF(bad); i++)
                assert_false(phi_name_valid(bad[i]));
}

static void test_bool(void **state) {
        bool b = false;

        (void) state;
        assert_int_equal(phi_parse_bool("yes", &b), 0);
        assert_true(b);
        assert_int_equal(phi_parse_bool("off", &b), 0);
        assert_false(b);
        assert_int_equal(phi_parse_bool("Yes", &b), -EINVAL);
        assert_int_equal(phi_parse_bool("", &b), -EINVAL);
}

static void test_utf8(void **state) {
        (void) state;
        assert_true(phi_utf8_valid("plain", 5));
        assert_true(phi_utf8_valid("Ærø €𝄞", strlen("Ærø €𝄞")));
        assert_false(phi_utf8_valid("\xc0\x80", 2));         /* overlong NUL */
        assert_false(phi_utf8_valid("\xe0\x80\xaf", 3));     /* overlong '/' */
        assert_false(phi_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
        assert_false(phi_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
        assert_false(phi_utf8_valid("\xe2\x82", 2));         /* cut short */
        assert_false(phi_utf8_valid("a\0b", 3));
}

static void test_secret(void **state) {
        char s[] = "123456";
        char *heap = strdup("654321");

        (void) state;
        assert_true(phi_secret_equal("abc", "abc", 3));
        assert_false(phi_secret_equal("abc", "abd", 3));
        phi_secret_wipe(s, sizeof(s));
        for (size_t i = 0; i < sizeof(s); i++)
                assert_int_equal(s[i], 0);
        phi_secret_free_str(heap);
        phi_secret_free_str(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_u64),      cmocka_unit_test(test_duration),
                cmocka_unit_test(test_format_duration),
                cmocka_unit_test(test_names),    cmocka_unit_test(test_bool),
                cmocka_unit_test(test_utf8),     cmocka_unit_test(test_secret),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

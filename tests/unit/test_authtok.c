/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "phi/authtok.h"
#include "phi/secret.h"

static void test_base64_strict(void **state) {
        static const struct {
                const char *in;
                const char *out; /* NULL: must be refused */
        } cases[] = {
                { "", "" },
                { "Zg==", "f" },
                { "Zm8=", "fo" },
                { "Zm9v", "foo" },
                { "Zm9vYg==", "foob" },
                { "Zm9vYmE=", "fooba" },
                { "Zm9vYmFy", "foobar" },
                { "+/+/", "\xfb\xff\xbf" },
                { "Zg=", NULL },        /* not a multiple of 4 */
                { "Zg", NULL },
                { "Zh==", NULL },       /* bits after the data */
                { "Zm9=", NULL },
                { "Z===", NULL },
                { "====", NULL },
                { "Zg==Zg==", NULL },   /* padding in the middle */
                { "Z=g=", NULL },
                { "Zm9v\n", NULL },
                { " Zm9v", NULL },
                { "Zm-v", NULL },       /* base64url is another alphabet */
                { "Zm_v", NULL },
        };
        uint8_t out[16];
        size_t n;

        (void) state;
        for (size_t i = 0; i < PHI_ELEMENTSOF(cases); i++) {
                int r = phi_base64_decode(cases[i].in, strlen(cases[i].in), out, sizeof(out), &n);
                if (!cases[i].out) {
                        assert_int_equal(r, -EINVAL);
                        continue;
                }
                assert_int_equal(r, 0);
                assert_int_equal(n, strlen(cases[i].out));
                assert_memory_equal(out, cases[i].out, n);
        }
        assert_int_equal(phi_base64_decode("Zm9vYmFy", 8, out, 5, &n), -ENOBUFS);
}

static void test_scrv1(void **state) {
        char *pw = NULL, *code = NULL;

        (void) state;
        assert_int_equal(phi_authtok_parse_scrv1("SCRV1:aHVudGVyMg==:MTIzNDU2", &pw, &code), 0);
        assert_string_equal(pw, "hunter2");
        assert_string_equal(code, "123456");
        phi_secret_free_str(pw);
        phi_secret_free_str(code);
        /* An empty password is the next module's business; an empty code is not. */
        assert_int_equal(phi_authtok_parse_scrv1("SCRV1::MTIzNDU2", &pw, &code), 0);
        assert_string_equal(pw, "");
        phi_secret_free_str(pw);
        phi_secret_free_str(code);
        pw = code = NULL;
        assert_int_equal(phi_authtok_parse_scrv1("SCRV1:aHVudGVyMg==:", &pw, &code), -EINVAL);
        /* NUL inside a decoded part: base64("a\0b") */
        assert_int_equal(phi_authtok_parse_scrv1("SCRV1:YQBi:MTIzNDU2", &pw, &code), -EINVAL);
        assert_int_equal(phi_authtok_parse_scrv1("SCRV1:aHVudGVyMg==:YQBi", &pw, &code), -EINVAL);
        /* A 17-byte code is over the wire's bound. */
        assert_int_equal(phi_authtok_parse_scrv1("SCRV1:aHVudGVyMg==:MTIzNDU2Nzg5MDEyMzQ1Njc=", &pw, &code), -EINVAL);
        assert_int_equal(phi_authtok_parse_scrv1("SCRV2:aHVudGVyMg==:MTIzNDU2", &pw, &code), -EINVAL);
        assert_int_equal(phi_authtok_parse_scrv1("SCRV1", &pw, &code), -EINVAL);
        assert_null(pw);
        assert_null(code);
}

static void test_combined(void **state) {
        char *pw = NULL, *code = NULL;
        char big[PHI_AUTHTOK_MAX + 8];

        (void) state;
        assert_int_equal(phi_authtok_split_combined("pa55word123456", 6, &pw, &code), 0);
        assert_string_equal(pw, "pa55word");
        assert_string_equal(code, "123456");
        phi_secret_free_str(pw);
        phi_secret_free_str(code);
        assert_int_equal(phi_authtok_split_combined("12345678", 8, &pw, &code), 0);
        assert_string_equal(pw, "");
        assert_string_equal(code, "12345678");
        phi_secret_free_str(pw);
        phi_secret_free_str(code);
        pw = code = NULL;
        assert_int_equal(phi_authtok_split_combined("12345", 6, &pw, &code), -EINVAL);
        assert_int_equal(phi_authtok_split_combined("password12345x", 6, &pw, &code), -EINVAL);
        assert_int_equal(phi_authtok_split_combined("password", 6, &pw, &code), -EINVAL);
        memset(big, '1', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        assert_int_equal(phi_authtok_split_combined(big, 6, &pw, &code), -E2BIG);
        assert_null(pw);
        assert_null(code);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_base64_strict),
                cmocka_unit_test(test_scrv1),
                cmocka_unit_test(test_combined),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

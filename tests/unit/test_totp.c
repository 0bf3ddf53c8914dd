/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <sodium.h>

#include "phi/secret.h"
#include "totp.h"

/* RFC 6238 appendix B: the seeds are ASCII digits, 20/32/64 bytes for SHA1/256/512. */
static const char rfc_seed1[] = "12345678901234567890";
static const char rfc_seed256[] = "12345678901234567890123456789012";
static const char rfc_seed512[] =
        "1234567890123456789012345678901234567890123456789012345678901234";

static const struct {
        time_t t;
        const char *sha1, *sha256, *sha512;
} rfc_vectors[] = {
        { 59, "94287082", "46119246", "90693936" },
        { 1111111109, "07081804", "68084774", "25091201" },
        { 1111111111, "14050471", "67062674", "99943326" },
        { 1234567890, "89005924", "91819424", "93441116" },
        { 2000000000, "69279037", "90698825", "38618901" },
        { 20000000000, "65353130", "77737706", "47863826" },
};

static int setup(void **state) {
        (void) state;
        return sodium_init() < 0 ? -1 : phi_totp_init();
}

static void test_rfc6238_vectors(void **state) {
        (void) state;
        for (size_t i = 0; i < PHI_ELEMENTSOF(rfc_vectors); i++) {
                const struct {
                        enum phi_totp_algorithm a;
                        const char *seed;
                        const char *code;
                } cases[] = {
                        { PHI_TOTP_SHA1, rfc_seed1, rfc_vectors[i].sha1 },
                        { PHI_TOTP_SHA256, rfc_seed256, rfc_vectors[i].sha256 },
                        { PHI_TOTP_SHA512, rfc_seed512, rfc_vectors[i].sha512 },
                };
                for (size_t j = 0; j < PHI_ELEMENTSOF(cases); j++) {
                        struct phi_totp_params p = { cases[j].a, 8, 0 };
                        const uint8_t *seed = (const uint8_t *) cases[j].seed;
                        size_t len = strlen(cases[j].seed);
                        uint64_t step = 0;
                        char buf[9];

                        assert_int_equal(phi_totp_generate(seed, len, &p, phi_totp_step(rfc_vectors[i].t), buf), 0);
                        assert_string_equal(buf, cases[j].code);
                        assert_int_equal(phi_totp_verify(seed, len, &p, rfc_vectors[i].t, cases[j].code, 0, &step), 0);
                        assert_int_equal(step, phi_totp_step(rfc_vectors[i].t));
                }
        }
}

/* An independent implementation: oathtool computes the code for a random seed. */
static int oathtool_code(const uint8_t *seed, size_t len, const char *alg, unsigned digits,
                         time_t t, char out[16]) {
        char cmd[512], hex[2 * 64 + 1];
        FILE *f;
        int ok;

        sodium_bin2hex(hex, sizeof(hex), seed, len);
        snprintf(cmd, sizeof(cmd), "oathtool --totp=%s -d %u -N @%lld %s 2>/dev/null", alg, digits,
                 (long long) t, hex);
        f = popen(cmd, "r");
        if (!f)
                return -1;
        ok = fgets(out, 16, f) != NULL;
        if (pclose(f) != 0 || !ok)
                return -1;
        out[strcspn(out, "\n")] = 0;
        return 0;
}

static void test_against_oathtool(void **state) {
        static const struct {
                enum phi_totp_algorithm a;
                const char *name;
        } algs[] = { { PHI_TOTP_SHA1, "sha1" }, { PHI_TOTP_SHA256, "sha256" }, { PHI_TOTP_SHA512, "sha512" } };
        uint8_t seed[20];
        char want[16];

        (void) state;
        if (system("command -v oathtool >/dev/null") != 0)
                skip();
        for (int round = 0; round < 4; round++) {
                time_t t = 1700000000 + (time_t) randombytes_uniform(100000000);
                randombytes_buf(seed, sizeof(seed));
                for (size_t i = 0; i < PHI_ELEMENTSOF(algs); i++)
                        for (unsigned digits = 6; digits <= 8; digits += 2) {
                                struct phi_totp_params p = { algs[i].a, digits, 1 };
                                uint64_t step = 0;
                                char buf[9];

                                assert_int_equal(oathtool_code(seed, sizeof(seed), algs[i].name, digits, t, want), 0);
                                assert_int_equal(phi_totp_generate(seed, sizeof(seed), &p, phi_totp_step(t), buf), 0);
                                assert_string_equal(buf, want);
                                assert_int_equal(phi_totp_verify(seed, sizeof(seed), &p, t, want, 0, &step), 0);
                                assert_int_equal(step, phi_totp_step(t));
                        }
        }
}

static void code_at(const uint8_t *seed, const struct phi_totp_params *p, uint64_t step, char buf[9]) {
        assert_int_equal(phi_totp_generate(seed, 20, p, step, buf), 0);
}

static void test_window(void **state) {
        struct phi_totp_params p = { PHI_TOTP_SHA1, 6, 1 };
        const uint8_t *seed = (const uint8_t *) rfc_seed1;
        time_t now = 1234567890;
        uint64_t s = phi_totp_step(now), got = 0;
        char c[9];

        (void) state;
        code_at(seed, &p, s - 1, c);
        assert_int_equal(phi_totp_verify(seed, 20, &p, now, c, 0, &got), 0);
        assert_int_equal(got, s - 1);
        code_at(seed, &p, s + 1, c);
        assert_int_equal(phi_totp_verify(seed, 20, &p, now, c, 0, &got), 0);
        assert_int_equal(got, s + 1);
        code_at(seed, &p, s - 2, c);
        assert_int_equal(phi_totp_verify(seed, 20, &p, now, c, 0, &got), -EACCES);
        code_at(seed, &p, s + 2, c);
        assert_int_equal(phi_totp_verify(seed, 20, &p, now, c, 0, &got), -EACCES);

        p.window = 0;
        code_at(seed, &p, s - 1, c);
        assert_int_equal(phi_totp_verify(seed, 20, &p, now, c, 0, &got), -EACCES);
        p.window = 3;
        code_at(seed, &p, s - 3, c);
        assert_int_equal(phi_totp_verify(seed, 20, &p, now, c, 0, &got), 0);
        assert_int_equal(got, s - 3);
        p.window = PHI_TOTP_MAX_WINDOW + 1;
        assert_int_equal(phi_totp_verify(seed, 20, &p, now, c, 0, &got), -EINVAL);
}

static void test_replay_watermark(void **state) {
        struct phi_totp_params p = { PHI_TOTP_SHA256, 6, 1 };
        const uint8_t *seed = (const uint8_t *) rfc_seed1;
        time_t now = 2000000000;
        uint64_t s = phi_totp_step(now), got = 0, wm = 0;
        char c[9], prev[9];

        (void) state;
        code_at(seed, &p, s, c);
        assert_int_equal(phi_totp_verify(seed, 20, &p, now, c, wm, &got), 0);
        wm = got;
        /* The same code again, and an older one still inside the window. */
        got = 77;
        assert_int_equal(phi_totp_verify(seed, 20, &p, now, c, wm, &got), -EALREADY);
        assert_int_equal(got, 77);
        code_at(seed, &p, s - 1, prev);
        assert_int_equal(phi_totp_verify(seed, 20, &p, now, prev, wm, &got), -EALREADY);
        /* The next step's code is still good: strictly greater than the watermark. */
        code_at(seed, &p, s + 1, c);
        assert_int_equal(phi_totp_verify(seed, 20, &p, now, c, wm, &got), 0);
        assert_int_equal(got, s + 1);
        /* After accepting s+1, the code of s is a replay even at a later time. */
        wm = got;
        code_at(seed, &p, s, c);
        assert_int_equal(phi_totp_verify(seed, 20, &p, now + 30, c, wm, &got), -EALREADY);
}

static void test_malformed_codes(void **state) {
        struct phi_totp_params p = { PHI_TOTP_SHA1, 6, 1 };
        const uint8_t *seed = (const uint8_t *) rfc_seed1;
        const char *bad[] = { "", "12345", "1234567", " 12345", "12345 ", "12a456", "-12345", "+12345",
                              "１２３４５６" };
        char good[9];
        uint64_t got;

        (void) state;
        for (size_t i = 0; i < PHI_ELEMENTSOF(bad); i++)
                assert_int_equal(phi_totp_verify(seed, 20, &p, 59, bad[i], 0, &got), -EACCES);
        /* An 8-digit code given to a 6-digit token, and the other way round. */
        p.digits = 8;
        code_at(seed, &p, phi_totp_step(59), good);
        p.digits = 6;
        assert_int_equal(phi_totp_verify(seed, 20, &p, 59, good, 0, &got), -EACCES);
        p.digits = 7;
        assert_int_equal(phi_totp_verify(seed, 20, &p, 59, "1234567", 0, &got), -EINVAL);
        assert_true(phi_totp_code_valid("000000", 6));
        assert_false(phi_totp_code_valid("0000000", 6));
}

static void test_uri(void **state) {
        struct phi_totp_params p = { PHI_TOTP_SHA512, 8, 1 };
        char *uri = NULL;

        (void) state;
        assert_int_equal(phi_totp_uri("phi test", "svc$", (const uint8_t *) rfc_seed1, 20, &p, &uri), 0);
        assert_string_equal(uri, "otpauth://totp/phi%20test:svc%24?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
                                 "&issuer=phi%20test&algorithm=SHA512&digits=8&period=30");
        phi_secret_free_str(uri);
}

static void test_algorithm_names(void **state) {
        enum phi_totp_algorithm a;

        (void) state;
        assert_int_equal(phi_totp_algorithm_from_name("sha256", &a), 0);
        assert_int_equal(a, PHI_TOTP_SHA256);
        assert_int_equal(phi_totp_algorithm_from_name("SHA512", &a), 0);
        assert_int_equal(a, PHI_TOTP_SHA512);
        assert_int_equal(phi_totp_algorithm_from_name("md5", &a), -EINVAL);
        assert_int_equal(phi_totp_algorithm_from_name("", &a), -EINVAL);
        assert_string_equal(phi_totp_algorithm_name(PHI_TOTP_SHA1), "SHA1");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rfc6238_vectors),
                cmocka_unit_test(test_against_oathtool),
                cmocka_unit_test(test_window),
                cmocka_unit_test(test_replay_watermark),
                cmocka_unit_test(test_malformed_codes),
                cmocka_unit_test(test_uri),
                cmocka_unit_test(test_algorithm_names),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}

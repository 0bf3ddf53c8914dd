/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The QR code drawn for enrolment: what a login (through sshd) or phictl shows.
 * Its size is bounded by the URI's, and must fit the reply that carries it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "phi/secret.h"
#include "phi/wire.h"
#include "qr.h"
#include "totp.h"

/* Lines of equal width, made of the three half blocks and spaces only. */
static void assert_drawing(const char *qr, size_t *ret_lines) {
        size_t lines = 0, width = 0;

        for (const char *line = qr; *line; lines++) {
                const char *end = strchr(line, '\n');
                size_t cells = 0;

                assert_non_null(end);
                for (const char *p = line; p < end; cells++) {
                        if (*p == ' ') {
                                p++;
                                continue;
                        }
                        assert_true(strncmp(p, "\xe2\x96\x88", 3) == 0 || strncmp(p, "\xe2\x96\x80", 3) == 0 ||
                                    strncmp(p, "\xe2\x96\x84", 3) == 0);
                        p += 3;
                }
                if (lines == 0)
                        width = cells;
                assert_int_equal(cells, width);
                line = end + 1;
        }
        /* Two module rows a line, the quiet zone included. */
        assert_int_equal(lines, (width + 1) / 2);
        *ret_lines = lines;
}

static void test_draws_a_uri(void **state) {
        char *qr = NULL;
        size_t lines = 0;

        (void) state;
        assert_int_equal(phi_qr_draw("otpauth://totp/phi:bob?secret=JBSWY3DPEHPK3PXP&issuer=phi", &qr), 0);
        assert_drawing(qr, &lines);
        /* Version 4 (33 modules) and a quiet zone of 2 each side: 37 columns. */
        assert_int_equal(lines, 19);
        phi_secret_free_str(qr);
}

static void test_refuses_what_it_cannot_encode(void **state) {
        char *text = malloc(4000), *qr = NULL;

        (void) state;
        assert_non_null(text);
        assert_int_equal(phi_qr_draw("", &qr), -EINVAL);
        /* Past the capacity of the largest code (2,331 bytes at level M). */
        memset(text, 'a', 3999);
        text[3999] = 0;
        assert_int_equal(phi_qr_draw(text, &qr), -EINVAL);
        assert_null(qr);
        free(text);
}

/* The longest URI the daemon can make (an issuer of 64 bytes that all need
 * escaping, a name of 32), and any URI the wire takes (1,024 bytes), give a
 * drawing that fits the TOTP_SECRET reply: an enrolment at login can never
 * fail for the size of its QR code. */
static void test_fits_the_reply(void **state) {
        struct phi_totp_params p = { PHI_TOTP_SHA512, 8, 1 };
        uint8_t seed[20] = { 0 };
        char issuer[65], user[33], *uri = NULL, *qr = NULL, *text = malloc(1024);
        phi_msg *m = NULL;
        size_t lines = 0;

        (void) state;
        assert_non_null(text);
        memset(issuer, ' ', 64);
        issuer[64] = 0;
        memset(user, 'u', 32);
        user[32] = 0;
        assert_int_equal(phi_totp_uri(issuer, user, seed, sizeof(seed), &p, &uri), 0);
        memset(text, 'x', 1023);
        text[1023] = 0;
        for (int i = 0; i < 2; i++) {
                const char *t = i == 0 ? uri : text;

                m = phi_msg_new(PHI_MSG_TOTP_SECRET);
                assert_non_null(m);
                assert_int_equal(phi_qr_draw(t, &qr), 0);
                assert_drawing(qr, &lines);
                assert_int_equal(phi_msg_put_str(m, PHI_TAG_USER, user), 0);
                assert_int_equal(phi_msg_put_str(m, PHI_TAG_URI, t), 0);
                assert_int_equal(phi_msg_put_str(m, PHI_TAG_QR, qr), 0);
                phi_secret_free_str(qr);
                phi_msg_free(m);
        }
        phi_secret_free_str(uri);
        free(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_draws_a_uri),
                cmocka_unit_test(test_refuses_what_it_cannot_encode),
                cmocka_unit_test(test_fits_the_reply),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

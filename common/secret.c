/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "phi/secret.h"

bool phi_secret_equal(const void *a, const void *b, size_t n) {
        const volatile unsigned char *x = a, *y = b;
        unsigned char diff = 0;

        for (size_t i = 0; i < n; i++)
                diff |= (unsigned char) (x[i] ^ y[i]);
        return diff == 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Secrets (TOTP seeds, codes, keys, passwords) are wiped on every exit path.
 * explicit_bzero is used because a plain memset before free() is dead-store
 * eliminated by the compiler. */

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "phi/macro.h"

static inline void phi_secret_wipe(void *p, size_t n) {
        if (p && n > 0)
                explicit_bzero(p, n);
}

/* Wipes a NUL-terminated string and frees it; accepts NULL. */
static inline void phi_secret_free_str(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}
static inline void phi_secret_free_strp(char **s) {
        phi_secret_free_str(*s);
}
#define _cleanup_secret_str_ _cleanup_(phi_secret_free_strp)

/* Constant-time comparison of equal-length buffers: no early exit that leaks
 * where the first difference is. */
bool phi_secret_equal(const void *a, const void *b, size_t n) _phi_nonnull_args_(1, 2);

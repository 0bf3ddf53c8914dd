/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary bytes to the parser of a list of verifier keys (a fleet's
 * [audit] trusted_keys file). Whatever the input: a success counts no more
 * keys than allowed, each in canonical form (it formats back to a line of the
 * input); a refusal names a line within the input, or none for a bound. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phi/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct phi_audit_verifier keys[PHI_AUDIT_KEYS_MAX];
        const char *s = (const char *) data, *error = NULL;
        size_t n = 0, line = 0, lines = 1;
        int r;

        for (size_t i = 0; i < size; i++)
                lines += s[i] == '\n';
        r = phi_audit_verifiers_parse(s, size, keys, PHI_AUDIT_KEYS_MAX, &n, &line, &error);
        if (r == 0) {
                if (n > PHI_AUDIT_KEYS_MAX || line != 0)
                        abort();
                for (size_t i = 0; i < n; i++) {
                        /* Re-parsing a key's own name and id must find them. */
                        char prefix[PHI_AUDIT_NAME_MAX + 16];
                        int len = snprintf(prefix, sizeof(prefix), "%s+%08x+", keys[i].name, keys[i].id);
                        if (len <= 0 || !memmem(s, size, prefix, (size_t) len))
                                abort();
                }
        } else {
                if (!error || (r != -EINVAL && r != -E2BIG) || line > lines || (r == -EINVAL && line == 0))
                        abort();
        }
        return 0;
}

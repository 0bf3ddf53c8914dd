/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary bytes to the audit record parser. Whatever it accepts must
 * encode back to exactly the same bytes (one spelling per record: the parser
 * relies on this instead of a second pass), and every refusal says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "phi/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct phi_audit_parsed p;
        char again[PHI_AUDIT_RECORD_MAX];
        const char *error = NULL;
        size_t len;

        if (phi_audit_record_parse((const char *) data, size, &p, &error) < 0) {
                if (!error || !*error)
                        abort();
                return 0;
        }
        if (phi_audit_record_encode(&p.rec, again, sizeof(again), &len, &error) < 0 || len != size ||
            memcmp(again, data, size) != 0)
                abort();
        return 0;
}

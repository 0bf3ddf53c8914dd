/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary bytes to the export verifier, with sumdb/note's public test
 * key as the trusted one (the seeds are exports it signed). Whatever the
 * input, the verifier answers: verified, with a tree at least as large as the
 * records it names, or refused with a sentence, which names a record exactly
 * when it reports one. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phi/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct phi_audit_verifier key;
        static int have_key;
        struct phi_audit_export_result res;
        const char *error;
        int r;

        if (!have_key) {
                if (phi_audit_verifier_parse(VKEY, strlen(VKEY), &key, &error) < 0)
                        abort();
                have_key = 1;
        }
        if (size > 1 << 20)
                return 0;
        r = phi_audit_export_verify((const char *) data, size, &key, 1, &res);
        if (r == 0) {
                if (res.checkpoints == 0 || res.first + res.records > res.tree_size || !res.origin[0] ||
                    strcmp(res.key, "PeterNeumann") != 0)
                        abort();
        } else {
                char head[40];
                if (r != -EBADMSG || !res.what[0])
                        abort();
                snprintf(head, sizeof(head), "record %llu:", (unsigned long long) res.bad_seq);
                if (res.has_bad_seq != (strncmp(res.what, head, strlen(head)) == 0))
                        abort();
        }
        return 0;
}

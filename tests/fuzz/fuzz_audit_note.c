/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary bytes to the signed-note, checkpoint and key parsers. A note
 * opens only with a signature by the trusted key (golang.org/x/mod/sumdb/note's
 * test key, whose signer key is public: the seeds are notes it signed), its
 * text is a prefix of the input ending in a newline, and a checkpoint parsed
 * from it formats back to its first three lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "phi/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct phi_audit_verifier key;
        static int have_key;
        const char *s = (const char *) data, *error = NULL;
        struct phi_audit_checkpoint cp;
        struct phi_audit_verifier v;
        struct phi_audit_signer sk;
        size_t text_len = 0, k = 0;
        int r;

        if (!have_key) {
                if (phi_audit_verifier_parse(VKEY, strlen(VKEY), &key, &error) < 0)
                        abort();
                have_key = 1;
        }
        /* the key parsers on the same bytes */
        if (phi_audit_verifier_parse(s, size, &v, &error) == 0 && phi_audit_key_id(v.name, v.pk) != v.id)
                abort();
        if (phi_audit_signer_parse(s, size, &sk, &error) == 0)
                phi_audit_signer_wipe(&sk);

        r = phi_audit_note_open(s, size, &key, 1, &text_len, &k, &error);
        if (r < 0) {
                if (!error || !*error)
                        abort();
                return 0;
        }
        if (text_len == 0 || text_len >= size || s[text_len - 1] != '\n' || k != 0)
                abort();
        if (phi_audit_checkpoint_parse(s, text_len, &cp, &error) == 0) {
                char text[PHI_AUDIT_NAME_MAX + 128];
                size_t len;
                if (phi_audit_checkpoint_format(cp.origin, cp.size, cp.root, text, sizeof(text), &len) < 0 ||
                    len > text_len || memcmp(text, s, len) != 0)
                        abort();
        }
        return 0;
}

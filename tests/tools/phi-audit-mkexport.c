/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Test tool: makes audit keys and signed exports of synthetic records, so
 * that `phictl audit verify` can be tested before the daemon writes real
 * exports.
 *   phi-audit-mkexport keygen NAME SKEYFILE VKEYFILE
 *   phi-audit-mkexport export SKEYFILE RECORDS [FIRST END [EVERY]]   > FILE
 *   phi-audit-mkexport resign SKEYFILE < NOTE > NOTE
 * RECORDS is the size of the log; the export holds records FIRST..END-1 (all
 * by default), a checkpoint after every EVERY records, and the checkpoint of
 * the whole log last. resign: the text of a signed note (a checkpoint)
 * signed anew with SKEYFILE's key alone, as someone without the log's key
 * would forge one (the tamper tests). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phi/audit.h"
#include "phi/parse.h"

#include "audit_synth.h"

static int write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        if (!f || fprintf(f, "%s\n", text) < 0 || fclose(f) != 0) {
                perror(path);
                return 1;
        }
        return 0;
}

static int resign(const char *skey_path) {
        static char note[PHI_AUDIT_NOTE_MAX + 1], out[PHI_AUDIT_NOTE_MAX];
        char sk[PHI_AUDIT_SKEY_MAX];
        struct phi_audit_signer s;
        const char *error = NULL, *blank;
        size_t n, len = 0;
        FILE *f = fopen(skey_path, "re");

        if (!f || !fgets(sk, sizeof(sk), f)) {
                perror(skey_path);
                return 1;
        }
        fclose(f);
        sk[strcspn(sk, "\n")] = '\0';
        if (phi_audit_signer_parse(sk, strlen(sk), &s, &error) < 0) {
                fprintf(stderr, "%s: %s\n", skey_path, error);
                return 1;
        }
        n = fread(note, 1, PHI_AUDIT_NOTE_MAX, stdin);
        note[n] = '\0';
        blank = strstr(note, "\n\n");
        if (!blank || phi_audit_note_sign(&s, note, (size_t) (blank - note) + 1, out, sizeof(out), &len) < 0) {
                fprintf(stderr, "stdin: not a signed note\n");
                return 1;
        }
        phi_audit_signer_wipe(&s);
        return fwrite(out, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
        char sk[PHI_AUDIT_SKEY_MAX], vk[PHI_AUDIT_VKEY_MAX];
        struct phi_audit_signer s;
        uint64_t n, first = 0, end, every = 0;
        const char *error = NULL;
        size_t len;

        if (argc == 5 && strcmp(argv[1], "keygen") == 0) {
                if (phi_audit_keygen(argv[2], sk, vk) < 0) {
                        fprintf(stderr, "bad key name\n");
                        return 2;
                }
                return write_file(argv[3], sk) || write_file(argv[4], vk);
        }
        if (argc == 3 && strcmp(argv[1], "resign") == 0)
                return resign(argv[2]);
        if (argc < 4 || argc > 7 || argc == 5 || strcmp(argv[1], "export") != 0) {
                fprintf(stderr, "usage: %s keygen NAME SKEYFILE VKEYFILE\n"
                                "       %s export SKEYFILE RECORDS [FIRST END [EVERY]]\n"
                                "       %s resign SKEYFILE < NOTE\n",
                        argv[0], argv[0], argv[0]);
                return 2;
        }
        FILE *f = fopen(argv[2], "re");
        if (!f || !fgets(sk, sizeof(sk), f)) {
                perror(argv[2]);
                return 1;
        }
        fclose(f);
        sk[strcspn(sk, "\n")] = '\0';
        if (phi_audit_signer_parse(sk, strlen(sk), &s, &error) < 0) {
                fprintf(stderr, "%s: %s\n", argv[2], error);
                return 1;
        }
        if (phi_parse_u64(argv[3], 0, 100000000, &n) < 0 ||
            (argc >= 6 && (phi_parse_u64(argv[4], 0, n, &first) < 0 || phi_parse_u64(argv[5], first, n, &end) < 0)) ||
            (argc == 7 && phi_parse_u64(argv[6], 0, n, &every) < 0)) {
                fprintf(stderr, "bad numbers\n");
                return 2;
        }
        if (argc < 6)
                end = n;
        char *out = synth_export(&s, s.name, n, first, end, every, &len);
        phi_audit_signer_wipe(&s);
        if (fwrite(out, 1, len, stdout) != len || fflush(stdout) != 0) {
                perror("stdout");
                return 1;
        }
        free(out);
        return 0;
}

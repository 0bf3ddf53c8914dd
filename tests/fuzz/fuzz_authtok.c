/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary bytes to the one-field VPN login parsers pam_phi runs inside
 * sshd and openvpn. A split must give back exactly the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "phi/authtok.h"
#include "phi/secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1), *pw = NULL, *code = NULL;
        uint8_t out[64];
        size_t n;

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        if (phi_authtok_parse_scrv1(s, &pw, &code) == 0) {
                if (strlen(code) == 0 || strlen(code) > PHI_CODE_MAX)
                        abort();
                phi_secret_free_str(pw);
                phi_secret_free_str(code);
        }
        for (unsigned digits = 6; digits <= 8; digits += 2) {
                if (phi_authtok_split_combined(s, digits, &pw, &code) == 0) {
                        size_t lp = strlen(pw);
                        if (strlen(code) != digits || memcmp(s, pw, lp) != 0 ||
                            strcmp(s + lp, code) != 0)
                                abort();
                        phi_secret_free_str(pw);
                        phi_secret_free_str(code);
                }
        }
        if (phi_base64_decode(s, strlen(s), out, sizeof(out), &n) == 0 && n > sizeof(out))
                abort();
        free(s);
        return 0;
}

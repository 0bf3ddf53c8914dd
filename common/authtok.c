/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One-field VPN logins; see phi/authtok.h. Written by hand because libc has no
 * base64 decoder, and libresolv's b64_pton skips whitespace and accepts
 * non-canonical trailing bits -- too lenient for a parser in front of PAM, and
 * one more library mapped into every sshd. */

#include "phi/authtok.h"
#include "phi/secret.h"

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int phi_base64_decode(const char *in, size_t len, uint8_t *out, size_t out_size, size_t *ret_len) {
        size_t o = 0;

        if (len % 4 != 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                int v[4];
                size_t pad = 0;
                uint32_t bits;

                for (int j = 0; j < 4; j++) {
                        char c = in[i + j];
                        /* '=' only at the end of the last quantum, at most two. */
                        if (c == '=' && last && j >= 2 && (j == 3 || in[i + 3] == '=')) {
                                v[j] = 0;
                                pad++;
                                continue;
                        }
                        if (pad > 0 || (v[j] = b64_value(c)) < 0)
                                return -EINVAL;
                }
                bits = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 | (uint32_t) v[3];
                /* Canonical form: the bits the padding leaves over must be zero. */
                if ((pad == 1 && (bits & 0xff)) || (pad == 2 && (bits & 0xffff)))
                        return -EINVAL;
                if (out_size - o < 3 - pad)
                        return -ENOBUFS;
                out[o++] = (uint8_t) (bits >> 16);
                if (pad < 2)
                        out[o++] = (uint8_t) (bits >> 8);
                if (pad < 1)
                        out[o++] = (uint8_t) bits;
        }
        *ret_len = o;
        return 0;
}

static int dup_part(const char *p, size_t n, char **ret) {
        char *s;

        if (memchr(p, 0, n))
                return -EINVAL;
        s = malloc(n + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, p, n);
        s[n] = 0;
        *ret = s;
        return 0;
}

int phi_authtok_split_combined(const char *authtok, unsigned digits, char **ret_password,
                               char **ret_code) {
        size_t len = strnlen(authtok, PHI_AUTHTOK_MAX + 1);
        char *password = NULL, *code = NULL;
        int r;

        if (len > PHI_AUTHTOK_MAX)
                return -E2BIG;
        if (digits == 0 || digits > PHI_CODE_MAX || len < digits)
                return -EINVAL;
        for (size_t i = len - digits; i < len; i++)
                if (authtok[i] < '0' || authtok[i] > '9')
                        return -EINVAL;
        if ((r = dup_part(authtok, len - digits, &password)) < 0 ||
            (r = dup_part(authtok + len - digits, digits, &code)) < 0) {
                phi_secret_free_str(password);
                return r;
        }
        *ret_password = password;
        *ret_code = code;
        return 0;
}

int phi_authtok_parse_scrv1(const char *authtok, char **ret_password, char **ret_code) {
        static const char prefix[] = "SCRV1:";
        size_t len = strnlen(authtok, PHI_AUTHTOK_MAX + 1);
        uint8_t buf[PHI_AUTHTOK_MAX];
        const char *b64_pw, *b64_code, *colon;
        size_t pw_len = 0, code_len = 0;
        char *password = NULL, *code = NULL;
        int r;

        if (len > PHI_AUTHTOK_MAX)
                return -E2BIG;
        if (len < sizeof(prefix) - 1 || memcmp(authtok, prefix, sizeof(prefix) - 1) != 0)
                return -EINVAL;
        b64_pw = authtok + sizeof(prefix) - 1;
        colon = strchr(b64_pw, ':');
        if (!colon || strchr(colon + 1, ':'))
                return -EINVAL;
        b64_code = colon + 1;

        r = phi_base64_decode(b64_pw, (size_t) (colon - b64_pw), buf, sizeof(buf), &pw_len);
        if (r == 0)
                r = dup_part((const char *) buf, pw_len, &password);
        phi_secret_wipe(buf, sizeof(buf));
        if (r < 0)
                goto fail;
        r = phi_base64_decode(b64_code, strlen(b64_code), buf, PHI_CODE_MAX, &code_len);
        if (r == 0)
                r = code_len == 0 ? -EINVAL : dup_part((const char *) buf, code_len, &code);
        phi_secret_wipe(buf, sizeof(buf));
        if (r < 0)
                goto fail;
        *ret_password = password;
        *ret_code = code;
        return 0;
fail:
        phi_secret_free_str(password);
        return r == -ENOBUFS ? -EINVAL : r;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The bounded buffer, JSON strings and base64 of libphi_audit. */

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "phi/parse.h"

#include "audit_internal.h"

void audit_out_str(struct audit_out *o, const char *s) {
        audit_out_put(o, s, strlen(s));
}

void audit_out_u64(struct audit_out *o, uint64_t v) {
        char tmp[20];
        size_t i = sizeof(tmp);

        do {
                tmp[--i] = (char) ('0' + v % 10);
                v /= 10;
        } while (v);
        audit_out_put(o, tmp + i, sizeof(tmp) - i);
}

void audit_out_json_string(struct audit_out *o, const char *s, size_t n) {
        static const char hex[] = "0123456789abcdef";
        size_t run = 0;

        audit_out_put(o, "\"", 1);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c >= 0x20 && c != '"' && c != '\\')
                        continue;
                audit_out_put(o, s + run, i - run);
                if (c < 0x20) {
                        char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
                        audit_out_put(o, e, sizeof(e));
                } else {
                        char e[2] = { '\\', (char) c };
                        audit_out_put(o, e, sizeof(e));
                }
                run = i + 1;
        }
        audit_out_put(o, s + run, n - run);
        audit_out_put(o, "\"", 1);
}

void audit_out_hash_b64(struct audit_out *o, const uint8_t h[PHI_AUDIT_HASH_SIZE]) {
        char b64[sodium_base64_ENCODED_LEN(PHI_AUDIT_HASH_SIZE, sodium_base64_VARIANT_ORIGINAL)];

        sodium_bin2base64(b64, sizeof(b64), h, PHI_AUDIT_HASH_SIZE, sodium_base64_VARIANT_ORIGINAL);
        audit_out_put(o, "\"", 1);
        audit_out_put(o, b64, 44);
        audit_out_put(o, "\"", 1);
}

void audit_out_hash_array(struct audit_out *o, const uint8_t h[][PHI_AUDIT_HASH_SIZE], size_t n) {
        audit_out_put(o, "[", 1);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        audit_out_put(o, ",", 1);
                audit_out_hash_b64(o, h[i]);
        }
        audit_out_put(o, "]", 1);
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;      /* uppercase too: one spelling per byte */
}

int audit_json_string_read(const char *s, size_t n, size_t *pos, char *dst, size_t cap, size_t *ret_len,
                           const char **ret_error) {
        size_t i = *pos, len = 0;
        unsigned char high = 0;

        if (i >= n || s[i] != '"') {
                *ret_error = "expected a string";
                return -EBADMSG;
        }
        for (i++;;) {
                size_t run = i;
                unsigned char c = 0;

                /* the plain bytes up to the next quote, backslash or control byte, copied at once */
                while (i < n && (c = (unsigned char) s[i]) >= 0x20 && c != '"' && c != '\\') {
                        high |= c;
                        i++;
                }
                if (i - run >= cap - len) {
                        *ret_error = "a string is too long";
                        return -EBADMSG;
                }
                memcpy(dst + len, s + run, i - run);
                len += i - run;
                if (i >= n) {
                        *ret_error = "unterminated string";
                        return -EBADMSG;
                }
                if (c == '"')
                        break;
                if (c < 0x20) {
                        *ret_error = "a control character in a string is not escaped";
                        return -EBADMSG;
                }
                /* a backslash */
                if (i + 1 >= n) {
                        *ret_error = "unterminated string";
                        return -EBADMSG;
                }
                char e = s[i + 1];
                if (e == '"' || e == '\\') {
                        c = (unsigned char) e;
                        i += 2;
                } else if (e == 'u' && n - i > 5 && s[i + 2] == '0' && s[i + 3] == '0' && hexval(s[i + 4]) >= 0 &&
                           hexval(s[i + 5]) >= 0 && hexval(s[i + 4]) * 16 + hexval(s[i + 5]) < 0x20) {
                        c = (unsigned char) (hexval(s[i + 4]) * 16 + hexval(s[i + 5]));
                        i += 6;
                } else {
                        *ret_error = "an escape other than \\\", \\\\ or \\u00xx (lowercase) for a "
                                     "control character";
                        return -EBADMSG;
                }
                if (len + 1 >= cap) {
                        *ret_error = "a string is too long";
                        return -EBADMSG;
                }
                dst[len++] = (char) c;
        }
        dst[len] = '\0';
        /* ASCII needs no further check; anything else must be UTF-8 (no NUL either way) */
        if (memchr(dst, '\0', len) || ((high & 0x80) && !phi_utf8_valid(dst, len))) {
                *ret_error = "a string is not UTF-8 or holds a NUL";
                return -EBADMSG;
        }
        *pos = i + 1;
        if (ret_len)
                *ret_len = len;
        return 0;
}

int audit_u64_read(const char *s, size_t n, size_t *pos, uint64_t *ret, const char **ret_error) {
        size_t i = *pos;
        uint64_t v = 0;

        if (i >= n || s[i] < '0' || s[i] > '9') {
                *ret_error = "expected a decimal number";
                return -EBADMSG;
        }
        if (s[i] == '0' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9') {
                *ret_error = "a number has a leading zero";
                return -EBADMSG;
        }
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
                unsigned d = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - d) / 10) {
                        *ret_error = "a number is larger than 2^64-1";
                        return -EBADMSG;
                }
                v = v * 10 + d;
        }
        *pos = i;
        *ret = v;
        return 0;
}

int audit_hash_b64_decode(const char *s, size_t n, uint8_t ret[PHI_AUDIT_HASH_SIZE]) {
        char again[sodium_base64_ENCODED_LEN(PHI_AUDIT_HASH_SIZE, sodium_base64_VARIANT_ORIGINAL)];
        size_t len = 0;

        if (n != 44 ||
            sodium_base642bin(ret, PHI_AUDIT_HASH_SIZE, s, n, NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
            len != PHI_AUDIT_HASH_SIZE)
                return -EBADMSG;
        /* one spelling per hash: the bits after the last byte must be zero */
        sodium_bin2base64(again, sizeof(again), ret, PHI_AUDIT_HASH_SIZE, sodium_base64_VARIANT_ORIGINAL);
        return memcmp(again, s, 44) == 0 ? 0 : -EBADMSG;
}

int audit_hash_array_read(const char *s, size_t n, size_t *pos, uint8_t ret[][PHI_AUDIT_HASH_SIZE], size_t max,
                          size_t *ret_n, const char **ret_error) {
        size_t i = *pos, k = 0;

        if (!AUDIT_MATCH(s, n, &i, "[")) {
                *ret_error = "expected a list of hashes";
                return -EBADMSG;
        }
        if (!AUDIT_MATCH(s, n, &i, "]"))
                for (;;) {
                        if (k >= max) {
                                *ret_error = "too many hashes in a list";
                                return -EBADMSG;
                        }
                        if (!AUDIT_MATCH(s, n, &i, "\"") || n - i < 45 || s[i + 44] != '"' ||
                            audit_hash_b64_decode(s + i, 44, ret[k]) < 0) {
                                *ret_error = "a hash is not 44 characters of canonical base64";
                                return -EBADMSG;
                        }
                        i += 45;
                        k++;
                        if (AUDIT_MATCH(s, n, &i, "]"))
                                break;
                        if (!AUDIT_MATCH(s, n, &i, ",")) {
                                *ret_error = "expected ',' or ']' in a list of hashes";
                                return -EBADMSG;
                        }
                }
        *pos = i;
        *ret_n = k;
        return 0;
}

bool audit_text_valid(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 && s[i] != '\n')
                        return false;
        return phi_utf8_valid(s, n);
}

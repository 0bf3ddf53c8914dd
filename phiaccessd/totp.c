/* SPDX-License-Identifier: GPL-2.0-or-later */
/* TOTP verification on top of liboath; see totp.h for the replay rule. */

#include <liboath/oath.h>
#include <stdio.h>
#include <strings.h>

#include "phi/secret.h"
#include "totp.h"

int phi_totp_init(void) {
        return oath_init() == OATH_OK ? 0 : -EIO;
}

const char *phi_totp_algorithm_name(enum phi_totp_algorithm a) {
        switch (a) {
        case PHI_TOTP_SHA1: return "SHA1";
        case PHI_TOTP_SHA256: return "SHA256";
        case PHI_TOTP_SHA512: return "SHA512";
        }
        return NULL;
}

int phi_totp_algorithm_from_name(const char *s, enum phi_totp_algorithm *ret) {
        static const enum phi_totp_algorithm all[] = { PHI_TOTP_SHA1, PHI_TOTP_SHA256, PHI_TOTP_SHA512 };

        for (size_t i = 0; i < PHI_ELEMENTSOF(all); i++)
                if (strcasecmp(s, phi_totp_algorithm_name(all[i])) == 0) {
                        *ret = all[i];
                        return 0;
                }
        return -EINVAL;
}

static int oath_flags(enum phi_totp_algorithm a) {
        switch (a) {
        case PHI_TOTP_SHA256: return OATH_TOTP_HMAC_SHA256;
        case PHI_TOTP_SHA512: return OATH_TOTP_HMAC_SHA512;
        case PHI_TOTP_SHA1: break;
        }
        return 0;
}

static bool params_valid(const struct phi_totp_params *p, size_t seed_len) {
        return (p->digits == 6 || p->digits == 8) && p->window <= PHI_TOTP_MAX_WINDOW &&
               phi_totp_algorithm_name(p->algorithm) && seed_len > 0 && seed_len <= 64;
}

bool phi_totp_code_valid(const char *code, unsigned digits) {
        size_t i;

        for (i = 0; i < digits; i++)
                if (code[i] < '0' || code[i] > '9')
                        return false;
        return code[i] == '\0';
}

uint64_t phi_totp_step(time_t now) {
        return now < 0 ? 0 : (uint64_t) now / PHI_TOTP_PERIOD;
}

struct compare {
        const char *code;
        size_t len;
};

/* liboath compares with strcmp() unless given a callback; this one does not
 * stop at the first differing digit. */
static int compare_code(void *handle, const char *candidate) {
        const struct compare *c = handle;

        if (strlen(candidate) != c->len)
                return 1;
        return phi_secret_equal(candidate, c->code, c->len) ? 0 : 1;
}

int phi_totp_verify(const uint8_t *seed, size_t seed_len, const struct phi_totp_params *p,
                    time_t now, const char *code, uint64_t watermark, uint64_t *ret_step) {
        struct compare cmp = { .code = code, .len = p->digits };
        uint64_t step = 0;
        int r;

        if (!params_valid(p, seed_len) || now < 0)
                return -EINVAL;
        if (!phi_totp_code_valid(code, p->digits))
                return -EACCES;

        /* liboath tries now, now+1, now-1, now+2, ... and stops at the first match,
         * so a code that also matched an older, already used step could only be
         * found first when it is at or below the watermark -- which refuses it. A
         * refusal is the safe side of a one-in-a-million coincidence. */
        r = oath_totp_validate4_callback((const char *) seed, seed_len, now, PHI_TOTP_PERIOD, 0,
                                         p->digits, p->window, NULL, &step, oath_flags(p->algorithm),
                                         compare_code, &cmp);
        if (r == OATH_INVALID_OTP)
                return -EACCES;
        if (r < 0)
                return -EIO;
        if (step <= watermark)
                return -EALREADY;
        if (ret_step)
                *ret_step = step;
        return 0;
}

int phi_totp_generate(const uint8_t *seed, size_t seed_len, const struct phi_totp_params *p,
                      uint64_t step, char buf[static 9]) {
        if (!params_valid(p, seed_len) || step > (uint64_t) INT64_MAX / PHI_TOTP_PERIOD)
                return -EINVAL;
        if (oath_totp_generate2((const char *) seed, seed_len, (time_t) (step * PHI_TOTP_PERIOD),
                                PHI_TOTP_PERIOD, 0, p->digits, oath_flags(p->algorithm),
                                buf) != OATH_OK)
                return -EIO;
        return 0;
}

/* Percent-encodes everything but RFC 3986 unreserved characters into out. */
static int uri_escape(const char *s, char *out, size_t size) {
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;

        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                bool plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                             (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' ||
                             *c == '~';
                if (o + (plain ? 1 : 3) >= size)
                        return -ENAMETOOLONG;
                if (plain)
                        out[o++] = (char) *c;
                else {
                        out[o++] = '%';
                        out[o++] = hex[*c >> 4];
                        out[o++] = hex[*c & 15];
                }
        }
        out[o] = 0;
        return 0;
}

int phi_totp_uri(const char *issuer, const char *user, const uint8_t *seed, size_t seed_len,
                 const struct phi_totp_params *p, char **ret) {
        char issuer_esc[3 * 64 + 1], user_esc[3 * 64 + 1];
        char *b32 = NULL, *uri = NULL;
        size_t b32_len = 0;
        int r, n;

        if (!params_valid(p, seed_len) || !*issuer || !*user)
                return -EINVAL;
        if ((r = uri_escape(issuer, issuer_esc, sizeof(issuer_esc))) < 0 ||
            (r = uri_escape(user, user_esc, sizeof(user_esc))) < 0)
                return r;
        if (oath_base32_encode((const char *) seed, seed_len, &b32, &b32_len) != OATH_OK)
                return -ENOMEM;
        /* Padding is optional in the key-URI format and some apps reject it. */
        while (b32_len > 0 && b32[b32_len - 1] == '=')
                b32[--b32_len] = 0;
        /* Sized first, then written once: asprintf() may leave partial copies of
         * the secret in buffers it grew and freed. */
#define URI_FORMAT "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=%s&digits=%u&period=%u"
#define URI_ARGS issuer_esc, user_esc, b32, issuer_esc, phi_totp_algorithm_name(p->algorithm), \
                 p->digits, PHI_TOTP_PERIOD
        n = snprintf(NULL, 0, URI_FORMAT, URI_ARGS);
        uri = n < 0 ? NULL : malloc((size_t) n + 1);
        if (!uri)
                r = -ENOMEM;
        else {
                (void) snprintf(uri, (size_t) n + 1, URI_FORMAT, URI_ARGS);
                *ret = uri;
                r = 0;
        }
#undef URI_FORMAT
#undef URI_ARGS
        phi_secret_free_str(b32);
        return r;
}

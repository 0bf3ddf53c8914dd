/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Hand-written because strtoull() accepts leading blanks, signs ("-1" wraps to
 * UINT64_MAX) and "0x" prefixes depending on base, and no libc function parses
 * "30m"; every value here arrives from a person or another process. */

#include <stdio.h>

#include "phi/parse.h"

int phi_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;
        const char *p = s;

        if (*p == 0)
                return -EINVAL;
        /* A leading zero is allowed only as "0": "010" may be meant as octal. */
        if (p[0] == '0' && p[1] != 0)
                return -EINVAL;
        for (; *p; p++) {
                unsigned d;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

static const struct {
        char unit;
        uint64_t seconds;
} duration_units[] = {
        { 's', 1 },
        { 'm', 60 },
        { 'h', 3600 },
        { 'd', 86400 },
};

int phi_parse_duration(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        char digits[21];
        size_t n = strspn(s, "0123456789");
        uint64_t count, mult = 0;
        int r;

        if (n == 0 || n >= sizeof(digits) || s[n] == 0 || s[n + 1] != 0)
                return -EINVAL;
        for (size_t i = 0; i < PHI_ELEMENTSOF(duration_units); i++)
                if (duration_units[i].unit == s[n])
                        mult = duration_units[i].seconds;
        if (mult == 0)
                return -EINVAL;
        memcpy(digits, s, n);
        digits[n] = 0;
        if ((r = phi_parse_u64(digits, 0, UINT64_MAX / mult, &count)) < 0)
                return r;
        count *= mult;
        if (count < min || count > max)
                return -ERANGE;
        *ret = count;
        return 0;
}

char *phi_format_duration(uint64_t seconds, char buf[static 24]) {
        size_t i = PHI_ELEMENTSOF(duration_units);
        int parts = 0;
        size_t len = 0;

        if (seconds == 0) {
                (void) snprintf(buf, 24, "0s");
                return buf;
        }
        while (i-- > 0 && parts < 2) {
                uint64_t q = seconds / duration_units[i].seconds;
                if (q == 0)
                        continue;
                len += (size_t) snprintf(buf + len, 24 - len, "%llu%c", (unsigned long long) q,
                                         duration_units[i].unit);
                seconds -= q * duration_units[i].seconds;
                parts++;
        }
        return buf;
}

bool phi_name_valid(const char *s) {
        size_t len = strnlen(s, PHI_NAME_MAX + 1);
        bool all_digits = true;

        if (len == 0 || len > PHI_NAME_MAX)
                return false;
        if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
              (s[0] >= '0' && s[0] <= '9') || s[0] == '_'))
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' ||
                          (c == '$' && i == len - 1);
                if (!ok)
                        return false;
                if (c < '0' || c > '9')
                        all_digits = false;
        }
        return !all_digits;
}

int phi_parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "yes", "true", "on", "1" };
        static const char *const no[] = { "no", "false", "off", "0" };

        for (size_t i = 0; i < PHI_ELEMENTSOF(yes); i++) {
                if (strcmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

bool phi_utf8_valid(const char *str, size_t len) {
        const unsigned char *s = (const unsigned char *) str;
        size_t i = 0;

        while (i < len) {
                unsigned char c = s[i];
                size_t need;
                uint32_t cp;

                if (c == 0)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xC2 && c <= 0xDF) {
                        need = 1;
                        cp = c & 0x1F;
                } else if (c >= 0xE0 && c <= 0xEF) {
                        need = 2;
                        cp = c & 0x0F;
                } else if (c >= 0xF0 && c <= 0xF4) {
                        need = 3;
                        cp = c & 0x07;
                } else
                        return false;
                if (len - i - 1 < need)
                        return false;
                for (size_t k = 1; k <= need; k++) {
                        if ((s[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3F);
                }
                /* Overlong forms, UTF-16 surrogates, and beyond U+10FFFF. */
                if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
                    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
                        return false;
                i += need + 1;
        }
        return true;
}

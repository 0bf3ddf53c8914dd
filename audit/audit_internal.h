/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the files of libphi_audit share: a bounded output buffer, the one JSON
 * string form of phi-audit(5) both ways, and strict base64. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phi/audit.h"

/* Appends up to cap; past it only counts, so one check at the end finds an
 * overflow. */
struct audit_out {
        char *buf;
        size_t cap;
        size_t len;
};

static inline void audit_out_put(struct audit_out *o, const void *p, size_t n) {
        if (o->len < o->cap && n <= o->cap - o->len)
                __builtin_memcpy(o->buf + o->len, p, n);
        else
                o->len = o->cap;        /* nothing more fits: stop writing, keep counting */
        o->len += n;
}
void audit_out_str(struct audit_out *o, const char *s);
void audit_out_u64(struct audit_out *o, uint64_t v);
/* '"' + s escaped ('"' and '\\' with a backslash, bytes below 0x20 as \u00xx) + '"'. */
void audit_out_json_string(struct audit_out *o, const char *s, size_t n);
/* "b64" of a hash, or a JSON array of them. */
void audit_out_hash_b64(struct audit_out *o, const uint8_t h[PHI_AUDIT_HASH_SIZE]);
void audit_out_hash_array(struct audit_out *o, const uint8_t h[][PHI_AUDIT_HASH_SIZE], size_t n);

/* Reads the JSON string that starts at s[*pos] (a '"') in the form above and no
 * other, into dst (at most cap bytes, NUL-terminated); *pos moves past the
 * closing quote. The result is checked to be UTF-8 without NUL. -EBADMSG. */
int audit_json_string_read(const char *s, size_t n, size_t *pos, char *dst, size_t cap, size_t *ret_len,
                           const char **ret_error);
/* A decimal integer without sign or leading zeros at s[*pos], at most 2^64-1. */
int audit_u64_read(const char *s, size_t n, size_t *pos, uint64_t *ret, const char **ret_error);

/* Exactly 44 characters of canonical standard base64 for a 32-byte hash. */
int audit_hash_b64_decode(const char *s, size_t n, uint8_t ret[PHI_AUDIT_HASH_SIZE]);
/* Reads ["b64",...] at s[*pos]: at most max hashes. */
int audit_hash_array_read(const char *s, size_t n, size_t *pos, uint8_t ret[][PHI_AUDIT_HASH_SIZE], size_t max,
                          size_t *ret_n, const char **ret_error);

/* The text rules of a signed note: UTF-8, no control character but '\n'. */
bool audit_text_valid(const char *s, size_t n);

static inline bool audit_match(const char *s, size_t n, size_t *pos, const char *lit, size_t len) {
        if (n - *pos < len || __builtin_memcmp(s + *pos, lit, len) != 0)
                return false;
        *pos += len;
        return true;
}
#define AUDIT_MATCH(s, n, pos, lit) audit_match(s, n, pos, lit, sizeof(lit) - 1)

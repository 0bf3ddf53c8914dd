/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Keys, signed notes (C2SP signed-note) and checkpoints (C2SP tlog-checkpoint),
 * byte for byte as golang.org/x/mod/sumdb/note writes and reads them, with the
 * bounds of phi-audit(5). */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "phi/parse.h"
#include "phi/secret.h"

#include "audit_internal.h"

#define ALG_ED25519 0x01
#define SIG_PREFIX "\xe2\x80\x94 "      /* U+2014 EM DASH, space */
#define KEY_B64_LEN 44                  /* base64 of 33 bytes */

/* Go's unicode.IsSpace, which sumdb/note uses for names. */
static bool unicode_space(uint32_t c) {
        return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
               (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
               c == 0x3000;
}

bool phi_audit_key_name_valid(const char *name, size_t n) {
        const unsigned char *s = (const unsigned char *) name;

        if (n == 0 || n > PHI_AUDIT_NAME_MAX || !phi_utf8_valid(name, n))
                return false;
        for (size_t i = 0; i < n;) {
                uint32_t c;
                size_t len;
                if (s[i] < 0x80) {
                        c = s[i];
                        len = 1;
                } else if (s[i] < 0xe0) {
                        c = (uint32_t) (s[i] & 0x1f) << 6 | (s[i + 1] & 0x3f);
                        len = 2;
                } else if (s[i] < 0xf0) {
                        c = (uint32_t) (s[i] & 0x0f) << 12 | (uint32_t) (s[i + 1] & 0x3f) << 6 | (s[i + 2] & 0x3f);
                        len = 3;
                } else {
                        c = (uint32_t) (s[i] & 0x07) << 18 | (uint32_t) (s[i + 1] & 0x3f) << 12 |
                            (uint32_t) (s[i + 2] & 0x3f) << 6 | (s[i + 3] & 0x3f);
                        len = 4;
                }
                /* no '+' (the key encodings' separator), no space, no control character */
                if (c == '+' || c < 0x20 || c == 0x7f || unicode_space(c))
                        return false;
                i += len;
        }
        return true;
}

uint32_t phi_audit_key_id(const char *name, const uint8_t pk[32]) {
        crypto_hash_sha256_state st;
        uint8_t h[crypto_hash_sha256_BYTES];
        static const uint8_t sep[2] = { '\n', ALG_ED25519 };

        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, (const uint8_t *) name, strlen(name));
        crypto_hash_sha256_update(&st, sep, sizeof(sep));
        crypto_hash_sha256_update(&st, pk, 32);
        crypto_hash_sha256_final(&st, h);
        return (uint32_t) h[0] << 24 | (uint32_t) h[1] << 16 | (uint32_t) h[2] << 8 | h[3];
}

static void key_b64(const uint8_t key[32], char out[KEY_B64_LEN + 1]) {
        uint8_t raw[33];

        raw[0] = ALG_ED25519;
        memcpy(raw + 1, key, 32);
        sodium_bin2base64(out, KEY_B64_LEN + 1, raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
        sodium_memzero(raw, sizeof(raw));
}

int phi_audit_key_from_seed(const char *name, const uint8_t seed[32], char skey[PHI_AUDIT_SKEY_MAX],
                            char vkey[PHI_AUDIT_VKEY_MAX]) {
        uint8_t pk[32], sk[64];
        char b64[KEY_B64_LEN + 1];
        uint32_t id;

        if (sodium_init() < 0)
                return -EIO;
        if (!phi_audit_key_name_valid(name, strlen(name)))
                return -EINVAL;
        crypto_sign_seed_keypair(pk, sk, seed);
        sodium_memzero(sk, sizeof(sk));
        id = phi_audit_key_id(name, pk);
        key_b64(seed, b64);
        (void) snprintf(skey, PHI_AUDIT_SKEY_MAX, "PRIVATE+KEY+%s+%08x+%s", name, id, b64);
        sodium_memzero(b64, sizeof(b64));
        key_b64(pk, b64);
        (void) snprintf(vkey, PHI_AUDIT_VKEY_MAX, "%s+%08x+%s", name, id, b64);
        return 0;
}

int phi_audit_keygen(const char *name, char skey[PHI_AUDIT_SKEY_MAX], char vkey[PHI_AUDIT_VKEY_MAX]) {
        uint8_t seed[32];
        int r;

        if (sodium_init() < 0)
                return -EIO;
        randombytes_buf(seed, sizeof(seed));
        r = phi_audit_key_from_seed(name, seed, skey, vkey);
        sodium_memzero(seed, sizeof(seed));
        return r;
}

/* NAME+HEXID+BASE64 after an optional prefix: the name, the id and the 32 key
 * bytes after the algorithm byte. */
static int key_split(const char *text, size_t n, char name[PHI_AUDIT_NAME_MAX + 1], uint32_t *ret_id,
                     uint8_t key[32], const char **ret_error) {
        const char *plus = memchr(text, '+', n);
        uint8_t raw[34];
        size_t len = 0, nlen;
        uint32_t id = 0;
        int r = -EINVAL;

        if (!plus) {
                *ret_error = "a key is NAME+KEYID+BASE64";
                return -EINVAL;
        }
        nlen = (size_t) (plus - text);
        if (!phi_audit_key_name_valid(text, nlen)) {
                *ret_error = "the key name is empty, longer than 256 bytes, or holds a space, '+' or control character";
                return -EINVAL;
        }
        if (n - nlen != 1 + 8 + 1 + KEY_B64_LEN || plus[9] != '+') {
                *ret_error = "a key is NAME+KEYID+BASE64 with 8 hexadecimal digits and 44 base64 characters";
                return -EINVAL;
        }
        for (unsigned i = 1; i <= 8; i++) {
                char c = plus[i];
                unsigned d = c >= '0' && c <= '9' ? (unsigned) (c - '0') : c >= 'a' && c <= 'f' ? (unsigned) (c - 'a' + 10) : 16;
                if (d == 16) {
                        *ret_error = "the key id is not 8 lowercase hexadecimal digits";
                        return -EINVAL;
                }
                id = id << 4 | d;
        }
        if (sodium_base642bin(raw, sizeof(raw), plus + 10, KEY_B64_LEN, NULL, &len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            len != 33) {
                *ret_error = "the key is not base64 of 33 bytes";
                goto out;
        }
        if (raw[0] != ALG_ED25519) {
                *ret_error = "the key is not an Ed25519 key (algorithm byte 0x01)";
                goto out;
        }
        memcpy(name, text, nlen);
        name[nlen] = '\0';
        memcpy(key, raw + 1, 32);
        *ret_id = id;
        r = 0;
out:
        sodium_memzero(raw, sizeof(raw));
        return r;
}

int phi_audit_verifier_parse(const char *text, size_t n, struct phi_audit_verifier *ret, const char **ret_error) {
        struct phi_audit_verifier v = {};
        const char *error_dummy;
        char again[PHI_AUDIT_VKEY_MAX];
        int r;

        if (!ret_error)
                ret_error = &error_dummy;
        if (sodium_init() < 0)
                return -EIO;
        if ((r = key_split(text, n, v.name, &v.id, v.pk, ret_error)) < 0)
                return r;
        if (phi_audit_key_id(v.name, v.pk) != v.id) {
                *ret_error = "the key id does not match the key's name and public key";
                return -EINVAL;
        }
        /* one spelling per key: the unused bits of the base64 are zero */
        char b64[KEY_B64_LEN + 1];
        key_b64(v.pk, b64);
        (void) snprintf(again, sizeof(again), "%s+%08x+%s", v.name, v.id, b64);
        if (strlen(again) != n || memcmp(again, text, n) != 0) {
                *ret_error = "the key is not in canonical base64";
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

int phi_audit_verifiers_parse(const char *text, size_t n, struct phi_audit_verifier *keys, size_t max,
                              size_t *n_keys, size_t *ret_line, const char **ret_error) {
        const char *error_dummy;
        size_t line = 0, pos = 0;

        if (!ret_error)
                ret_error = &error_dummy;
        *ret_line = 0;
        if (n > PHI_AUDIT_KEYS_TEXT_MAX) {
                *ret_error = "the list of keys is larger than 64 KiB";
                return -E2BIG;
        }
        while (pos < n) {
                const char *p = text + pos, *nl = memchr(p, '\n', n - pos);
                size_t len = nl ? (size_t) (nl - p) : n - pos;
                int r;

                pos += len + (nl ? 1 : 0);
                line++;
                while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
                        len--;
                while (len > 0 && (*p == ' ' || *p == '\t'))
                        p++, len--;
                if (len == 0 || *p == '#')
                        continue;
                *ret_line = line;
                if (memchr(p, '\0', len)) {
                        *ret_error = "a NUL byte";
                        return -EINVAL;
                }
                if (*n_keys >= max) {
                        *ret_error = "more keys than a verification takes";
                        return -E2BIG;
                }
                if ((r = phi_audit_verifier_parse(p, len, &keys[*n_keys], ret_error)) < 0)
                        return r;
                (*n_keys)++;
        }
        *ret_line = 0;
        return 0;
}

int phi_audit_signer_parse(const char *text, size_t n, struct phi_audit_signer *ret, const char **ret_error) {
        struct phi_audit_signer s = {};
        uint8_t seed[32], pk[32];
        const char *error_dummy;
        int r;

        if (!ret_error)
                ret_error = &error_dummy;
        if (sodium_init() < 0)
                return -EIO;
        if (n < 12 || memcmp(text, "PRIVATE+KEY+", 12) != 0) {
                *ret_error = "a signer key starts with PRIVATE+KEY+";
                return -EINVAL;
        }
        if ((r = key_split(text + 12, n - 12, s.name, &s.id, seed, ret_error)) < 0)
                goto out;
        crypto_sign_seed_keypair(pk, s.sk, seed);
        if (phi_audit_key_id(s.name, pk) != s.id) {
                *ret_error = "the key id does not match the key's name and public key";
                r = -EINVAL;
                goto out;
        }
        *ret = s;
        r = 0;
out:
        sodium_memzero(seed, sizeof(seed));
        phi_audit_signer_wipe(&s);
        return r;
}

void phi_audit_signer_wipe(struct phi_audit_signer *s) {
        sodium_memzero(s, sizeof(*s));
}

int phi_audit_note_sign(const struct phi_audit_signer *s, const char *text, size_t n, char *buf, size_t cap,
                        size_t *ret_len) {
        uint8_t sig[4 + crypto_sign_BYTES];
        char b64[sodium_base64_ENCODED_LEN(sizeof(sig), sodium_base64_VARIANT_ORIGINAL)];
        struct audit_out o = { .buf = buf, .cap = cap };

        if (sodium_init() < 0)
                return -EIO;
        if (n == 0 || text[n - 1] != '\n' || !audit_text_valid(text, n))
                return -EINVAL;
        sig[0] = (uint8_t) (s->id >> 24);
        sig[1] = (uint8_t) (s->id >> 16);
        sig[2] = (uint8_t) (s->id >> 8);
        sig[3] = (uint8_t) s->id;
        crypto_sign_detached(sig + 4, NULL, (const uint8_t *) text, n, s->sk);
        sodium_bin2base64(b64, sizeof(b64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
        audit_out_put(&o, text, n);
        audit_out_str(&o, "\n" SIG_PREFIX);
        audit_out_str(&o, s->name);
        audit_out_str(&o, " ");
        audit_out_str(&o, b64);
        audit_out_put(&o, "\n", 2);     /* with the NUL */
        if (o.len > cap)
                return -ENOBUFS;
        *ret_len = o.len - 1;
        return 0;
}

int phi_audit_note_open(const char *note, size_t n, const struct phi_audit_verifier *keys, size_t n_keys,
                        size_t *ret_text_len, size_t *ret_key, const char **ret_error) {
        const char *error_dummy;
        size_t text_len, pos, n_sigs = 0, verified = SIZE_MAX;

        if (!ret_error)
                ret_error = &error_dummy;
        if (sodium_init() < 0)
                return -EIO;
        if (n > PHI_AUDIT_NOTE_MAX) {
                *ret_error = "the note is longer than 16 KiB";
                return -EBADMSG;
        }
        if (!audit_text_valid(note, n)) {
                *ret_error = "the note is not UTF-8 or holds a control character other than newline";
                return -EBADMSG;
        }
        /* the text ends at the last blank line */
        for (text_len = n; text_len >= 2; text_len--)
                if (note[text_len - 1] == '\n' && note[text_len - 2] == '\n')
                        break;
        if (text_len < 2) {
                *ret_error = "the note has no blank line before its signatures";
                return -EBADMSG;
        }
        pos = text_len;
        text_len--;     /* the text keeps its final newline, not the blank line */
        if (pos == n || note[n - 1] != '\n') {
                *ret_error = "the note has no signature line, or its last line does not end in a newline";
                return -EBADMSG;
        }
        while (pos < n) {
                const char *line = note + pos, *end = memchr(line, '\n', n - pos), *sp;
                size_t len = (size_t) (end - line), name_len, b64_len, sig_len = 0;
                uint8_t sig[PHI_AUDIT_NOTE_MAX];
                uint32_t id;

                pos += len + 1;
                if (++n_sigs > PHI_AUDIT_NOTE_SIGS_MAX) {
                        *ret_error = "the note has more than 16 signatures";
                        return -EBADMSG;
                }
                if (len < 4 || memcmp(line, SIG_PREFIX, 4) != 0) {
                        *ret_error = "a signature line does not start with an em dash (U+2014) and a space";
                        return -EBADMSG;
                }
                line += 4;
                len -= 4;
                sp = memchr(line, ' ', len);
                if (!sp) {
                        *ret_error = "a signature line is not '\xe2\x80\x94 NAME SIGNATURE'";
                        return -EBADMSG;
                }
                name_len = (size_t) (sp - line);
                b64_len = len - name_len - 1;
                if (!phi_audit_key_name_valid(line, name_len) || b64_len == 0 ||
                    sodium_base642bin(sig, sizeof(sig), sp + 1, b64_len, NULL, &sig_len, NULL,
                                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
                    sig_len < 5) {
                        *ret_error = "a signature line has a bad key name or is not base64 of a key id and a signature";
                        return -EBADMSG;
                }
                id = (uint32_t) sig[0] << 24 | (uint32_t) sig[1] << 16 | (uint32_t) sig[2] << 8 | sig[3];
                for (size_t k = 0; k < n_keys; k++) {
                        /* a key is its name and id together; any other is ignored */
                        if (keys[k].id != id || strlen(keys[k].name) != name_len ||
                            memcmp(keys[k].name, line, name_len) != 0)
                                continue;
                        if (sig_len != 4 + crypto_sign_BYTES ||
                            crypto_sign_verify_detached(sig + 4, (const uint8_t *) note, text_len, keys[k].pk) != 0) {
                                *ret_error = "a signature by a trusted key does not verify: the text was changed";
                                return -EPERM;
                        }
                        if (verified == SIZE_MAX)
                                verified = k;
                }
        }
        if (verified == SIZE_MAX) {
                *ret_error = "no signature by a trusted key";
                return -EPERM;
        }
        *ret_text_len = text_len;
        if (ret_key)
                *ret_key = verified;
        return 0;
}

static bool origin_valid(const char *s, size_t n) {
        return n > 0 && n <= PHI_AUDIT_NAME_MAX && !memchr(s, '\n', n) && audit_text_valid(s, n);
}

int phi_audit_checkpoint_format(const char *origin, uint64_t size, const uint8_t root[PHI_AUDIT_HASH_SIZE],
                                char *buf, size_t cap, size_t *ret_len) {
        char b64[sodium_base64_ENCODED_LEN(PHI_AUDIT_HASH_SIZE, sodium_base64_VARIANT_ORIGINAL)];
        struct audit_out o = { .buf = buf, .cap = cap };

        if (!origin_valid(origin, strlen(origin)))
                return -EINVAL;
        sodium_bin2base64(b64, sizeof(b64), root, PHI_AUDIT_HASH_SIZE, sodium_base64_VARIANT_ORIGINAL);
        audit_out_str(&o, origin);
        audit_out_str(&o, "\n");
        audit_out_u64(&o, size);
        audit_out_str(&o, "\n");
        audit_out_str(&o, b64);
        audit_out_str(&o, "\n");
        if (o.len > cap)
                return -ENOBUFS;
        *ret_len = o.len;
        return 0;
}

int phi_audit_checkpoint_parse(const char *text, size_t n, struct phi_audit_checkpoint *ret,
                               const char **ret_error) {
        struct phi_audit_checkpoint cp = {};
        const char *error_dummy;
        size_t pos = 0, line = 0;

        if (!ret_error)
                ret_error = &error_dummy;
        if (n == 0 || text[n - 1] != '\n' || !audit_text_valid(text, n)) {
                *ret_error = "the checkpoint is not lines of UTF-8 text, each ending in a newline";
                return -EBADMSG;
        }
        while (pos < n) {
                const char *l = text + pos, *end = memchr(l, '\n', n - pos);
                size_t len = (size_t) (end - l), p = 0;

                pos += len + 1;
                if (len == 0) {
                        *ret_error = "the checkpoint has an empty line";
                        return -EBADMSG;
                }
                switch (line++) {
                case 0:
                        if (!origin_valid(l, len)) {
                                *ret_error = "the checkpoint's origin is longer than 256 bytes";
                                return -EBADMSG;
                        }
                        memcpy(cp.origin, l, len);
                        break;
                case 1:
                        if (audit_u64_read(l, len, &p, &cp.size, ret_error) < 0 || p != len) {
                                *ret_error = "the checkpoint's tree size is not a decimal number without leading zeros";
                                return -EBADMSG;
                        }
                        break;
                case 2:
                        if (audit_hash_b64_decode(l, len, cp.root) < 0) {
                                *ret_error = "the checkpoint's root hash is not canonical base64 of 32 bytes";
                                return -EBADMSG;
                        }
                        break;
                default:
                        cp.n_extensions++;
                }
        }
        if (line < 3) {
                *ret_error = "the checkpoint has fewer than three lines (origin, tree size, root hash)";
                return -EBADMSG;
        }
        *ret = cp;
        return 0;
}

int phi_audit_checkpoint_sign(const struct phi_audit_signer *s, const char *origin, uint64_t size,
                              const uint8_t root[PHI_AUDIT_HASH_SIZE], char *buf, size_t cap, size_t *ret_len) {
        char text[PHI_AUDIT_NAME_MAX + 128];
        size_t len;
        int r;

        if ((r = phi_audit_checkpoint_format(origin, size, root, text, sizeof(text), &len)) < 0)
                return r;
        return phi_audit_note_sign(s, text, len, buf, cap, ret_len);
}

int phi_audit_checkpoint_open(const char *note, size_t n, const struct phi_audit_verifier *keys, size_t n_keys,
                              struct phi_audit_checkpoint *ret, size_t *ret_key, const char **ret_error) {
        size_t text_len;
        int r;

        if ((r = phi_audit_note_open(note, n, keys, n_keys, &text_len, ret_key, ret_error)) < 0)
                return r;
        return phi_audit_checkpoint_parse(note, text_len, ret, ret_error);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Audit records and their one canonical encoding (phi-audit(5)). The parser
 * refuses every other spelling of the same record, so that a record has
 * exactly one leaf hash: its grammar admits one spelling of each byte, key
 * and number (the fuzz target checks that what it accepts encodes back to the
 * same bytes). */

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "phi/parse.h"

#include "audit_internal.h"

enum kind { K_TEXT, K_U64 };

/* In byte order of the keys: the encoding's order and the parser's. */
static const struct field {
        const char *key;
        enum kind kind;
        size_t offset;
        bool required;
        size_t max;             /* bytes of a text, before escaping */
} fields[] = {
#define TEXT(k) { #k, K_TEXT, offsetof(struct phi_audit_record, k), false, PHI_AUDIT_STRING_MAX }
        TEXT(actor),
        { "command", K_TEXT, offsetof(struct phi_audit_record, command), false, PHI_AUDIT_COMMAND_MAX },
        { "event", K_TEXT, offsetof(struct phi_audit_record, event), true, PHI_AUDIT_EVENT_MAX },
        { "expires", K_U64, offsetof(struct phi_audit_record, expires), false, 0 },
        TEXT(host),
        TEXT(reason),
        TEXT(request_id),
        TEXT(rhost),
        TEXT(role),
        TEXT(rule),
        { "seq", K_U64, offsetof(struct phi_audit_record, seq), true, 0 },
        TEXT(service),
        TEXT(target),
        { "time_us", K_U64, offsetof(struct phi_audit_record, time_us), true, 0 },
        TEXT(tty),
        TEXT(user),
#undef TEXT
};

static const char **text_of(struct phi_audit_record *r, const struct field *f) {
        return (const char **) (void *) ((char *) r + f->offset);
}
static uint64_t *u64_of(struct phi_audit_record *r, const struct field *f) {
        return (uint64_t *) (void *) ((char *) r + f->offset);
}
static const char *text_get(const struct phi_audit_record *r, const struct field *f) {
        return *(const char *const *) (const void *) ((const char *) r + f->offset);
}
static uint64_t u64_get(const struct phi_audit_record *r, const struct field *f) {
        return *(const uint64_t *) (const void *) ((const char *) r + f->offset);
}

/* "key" at s[pos] */
static bool key_at(const char *s, size_t n, size_t pos, const char *key) {
        size_t k = strlen(key);
        return n - pos >= k + 2 && s[pos] == '"' && memcmp(s + pos + 1, key, k) == 0 && s[pos + 1 + k] == '"';
}

static bool event_name_valid(const char *s, size_t n) {
        if (n == 0 || n > PHI_AUDIT_EVENT_MAX || s[0] < 'a' || s[0] > 'z')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                        return false;
        return true;
}

int phi_audit_record_encode(const struct phi_audit_record *rec, char *buf, size_t cap, size_t *ret_len,
                            const char **ret_error) {
        struct audit_out o = { .buf = buf, .cap = cap };
        const char *error_dummy;
        bool first = true;

        if (!ret_error)
                ret_error = &error_dummy;
        if (!rec->event || !event_name_valid(rec->event, strlen(rec->event))) {
                *ret_error = "the event is missing or not an event name ([a-z][a-z0-9_]*, at most 64)";
                return -EINVAL;
        }
        audit_out_put(&o, "{", 1);
        for (size_t i = 0; i < PHI_ELEMENTSOF(fields); i++) {
                const struct field *f = &fields[i];
                if (f->kind == K_TEXT) {
                        const char *s = text_get(rec, f);
                        size_t n = s ? strnlen(s, f->max + 1) : 0;
                        if (n == 0)
                                continue;
                        if (n > f->max || !phi_utf8_valid(s, n)) {
                                *ret_error = "a text field is longer than its bound (the command 1024 bytes, "
                                             "the others 512) or not UTF-8";
                                return -EINVAL;
                        }
                        if (!first)
                                audit_out_put(&o, ",", 1);
                        audit_out_json_string(&o, f->key, strlen(f->key));
                        audit_out_put(&o, ":", 1);
                        audit_out_json_string(&o, s, n);
                } else {
                        uint64_t v = u64_get(rec, f);
                        if (v == 0 && !f->required)
                                continue;
                        if (!first)
                                audit_out_put(&o, ",", 1);
                        audit_out_json_string(&o, f->key, strlen(f->key));
                        audit_out_put(&o, ":", 1);
                        audit_out_u64(&o, v);
                }
                first = false;
        }
        audit_out_put(&o, "}", 1);
        if (o.len > PHI_AUDIT_RECORD_MAX || o.len > cap) {
                *ret_error = "the record is longer than 8192 bytes encoded";
                return -E2BIG;
        }
        *ret_len = o.len;
        return 0;
}

int phi_audit_record_parse(const char *s, size_t n, struct phi_audit_parsed *ret, const char **ret_error) {
        const char *error_dummy;
        size_t pos = 0, used = 0;
        int last = -1;
        bool seen[PHI_ELEMENTSOF(fields)] = {};
        int r;

        if (!ret_error)
                ret_error = &error_dummy;
        memset(&ret->rec, 0, sizeof(ret->rec));
        if (n > PHI_AUDIT_RECORD_MAX) {
                *ret_error = "the record is longer than 8192 bytes";
                return -EBADMSG;
        }
        if (!AUDIT_MATCH(s, n, &pos, "{")) {
                *ret_error = "a record is a JSON object: '{' expected";
                return -EBADMSG;
        }
        for (;;) {
                size_t i;

                /* keys are plain ASCII and come in order: the next one is
                 * looked for after the last, literally (an escaped key is not
                 * canonical, so it is refused as unknown) */
                for (i = (size_t) (last + 1); i < PHI_ELEMENTSOF(fields); i++)
                        if (key_at(s, n, pos, fields[i].key))
                                break;
                if (i == PHI_ELEMENTSOF(fields)) {
                        for (i = 0; (int) i <= last; i++)
                                if (key_at(s, n, pos, fields[i].key))
                                        break;
                        if (pos >= n || s[pos] != '"')
                                *ret_error = "expected a string";
                        else if ((int) i <= last)
                                *ret_error = seen[i] && i == (size_t) last ? "a key is repeated" : "keys are not in byte order";
                        else
                                *ret_error = "unknown key";
                        return -EBADMSG;
                }
                last = (int) i;
                seen[i] = true;
                pos += strlen(fields[i].key) + 2;
                if (!AUDIT_MATCH(s, n, &pos, ":")) {
                        *ret_error = "':' expected after a key (no whitespace)";
                        return -EBADMSG;
                }
                const struct field *f = &fields[i];
                if (f->kind == K_U64) {
                        if ((r = audit_u64_read(s, n, &pos, u64_of(&ret->rec, f), ret_error)) < 0)
                                return r;
                        if (!f->required && *u64_of(&ret->rec, f) == 0) {
                                *ret_error = "expires is 0 (an absent expiry is left out)";
                                return -EBADMSG;
                        }
                } else {
                        size_t len = 0;
                        /* the unescaped text is never longer than its quoted form */
                        if ((r = audit_json_string_read(s, n, &pos, ret->storage + used,
                                                        sizeof(ret->storage) - used, &len, ret_error)) < 0)
                                return r;
                        if (len == 0) {
                                *ret_error = "a text field is empty (an absent field is left out)";
                                return -EBADMSG;
                        }
                        if (len > f->max) {
                                *ret_error = f->required ? "the event is not an event name ([a-z][a-z0-9_]*, at most 64)"
                                                         : "a text field is longer than its bound (the command "
                                                           "1024 bytes, the others 512)";
                                return -EBADMSG;
                        }
                        if (f->required && !event_name_valid(ret->storage + used, len)) {
                                *ret_error = "the event is not an event name ([a-z][a-z0-9_]*, at most 64)";
                                return -EBADMSG;
                        }
                        *text_of(&ret->rec, f) = ret->storage + used;
                        used += len + 1;
                }
                if (AUDIT_MATCH(s, n, &pos, "}"))
                        break;
                if (!AUDIT_MATCH(s, n, &pos, ",")) {
                        *ret_error = "',' or '}' expected after a value (no whitespace)";
                        return -EBADMSG;
                }
        }
        if (pos != n) {
                *ret_error = "text after the record's closing '}'";
                return -EBADMSG;
        }
        for (size_t i = 0; i < PHI_ELEMENTSOF(fields); i++)
                if (fields[i].required && !seen[i]) {
                        *ret_error = strcmp(fields[i].key, "event") == 0 ? "the event is missing"
                                     : strcmp(fields[i].key, "seq") == 0 ? "seq is missing"
                                                                         : "time_us is missing";
                        return -EBADMSG;
                }
        /* Every rule above leaves one spelling per record, so encoding what
         * was read gives the input back; the fuzz target checks that on every
         * input it accepts, so the verifier need not pay a second pass. */
        return 0;
}

void phi_audit_record_clip(struct phi_audit_record *rec, struct phi_audit_clip *storage) {
        size_t used = 0;

        for (size_t i = 0; i < PHI_ELEMENTSOF(fields); i++) {
                const struct field *f = &fields[i];
                const char *s;
                size_t n, cut;

                if (f->kind != K_TEXT || f->required || !(s = text_get(rec, f)) ||
                    (n = strnlen(s, f->max + 1)) <= f->max || used == PHI_ELEMENTSOF(storage->texts))
                        continue;
                /* back to a character's first byte: no sequence split */
                cut = f->max - 3;
                while (cut > 0 && ((unsigned char) s[cut] & 0xc0) == 0x80)
                        cut--;
                memcpy(storage->texts[used], s, cut);
                memcpy(storage->texts[used] + cut, "...", 4);
                *text_of(rec, f) = storage->texts[used++];
        }
}

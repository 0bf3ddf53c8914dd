/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * phictl audit (queries) and phictl audit export, on the request socket.
 *
 * The store keeps each record twice: the canonical record (the tree's leaf,
 * which the signed checkpoints cover) and copies of the fields queries filter
 * on. Only the leaf is trusted. A query therefore reads every row of its range
 * in seq order, parses each leaf, filters on the parsed record, and compares
 * the copies (and the stored leaf hash) with it: a row whose copies disagree
 * is reported to the auditor, whether the copies would have hidden a record
 * from the query or shown one that does not match. Filtering in SQL would let
 * an edited column hide a record silently.
 *
 * Paging. A reply is at most one frame (64 KiB). A query page scans at most
 * QUERY_SCAN rows and answers the records that match and fit, with "next"
 * (the seq to go on from) and "more"; phictl asks again with next. An export
 * is a contiguous run of records [first, end): its first page carries the
 * header (the tree of the records before first, built from the stored leaf
 * hashes), every page as many record lines as fit, with the stored
 * checkpoints that fall inside the run after the record that completes them,
 * and the last page the newest checkpoint with the consistency proof from end
 * to its size. The cursor (next, end) comes back from phictl; the daemon
 * keeps no state between pages, and checks the cursor against the store.
 *
 * An export needs a signed checkpoint covering its end. The first page of each
 * query or export is journaled as audit_query, an event the verifier seals
 * with a checkpoint at once; when none covers the end yet, the first page
 * answers "retry" and phictl asks again shortly, with the end fixed.
 */

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_handlers.h"
#include "journal.h"
#include "phi/audit.h"

/* Rows one query page reads from the store at most, in batches. */
#define QUERY_SCAN 4096
#define ROW_BATCH 128
/* Stored checkpoints looked at per export page. */
#define EXPORT_CHECKPOINTS 64
/* Room kept at the end of a reply for the cursor pairs. */
#define TRAILER_ROOM 256
/* A mismatch report: seq, column, both values. */
#define MISMATCH_ROOM (PHI_AUDIT_STRING_MAX * 2 + 256)

/* Auditors (and root) only, with a message that says which group: the
 * dispatcher's generic refusal would name the verb's classes, not what to ask
 * an admin for. The refusal is journaled as access_denied like any other. 1
 * when the caller may go on. */
static int auditor_only(struct phi_daemon *d, const struct phi_caller *identified, const char *verb,
                        phi_msg **ret_reply) {
        struct phi_caller c = *identified;
        char reason[512];
        int r;

        phi_caller_resolve_roles(d, &c);
        if (c.classes & (PHI_CALLER_ROOT | PHI_CALLER_AUDITOR))
                return 1;
        d->refused++;
        snprintf(reason, sizeof(reason), "'%s' is only for root or members of %s", verb, d->config->auditor_group);
        phi_dispatch_journal_refusal(d, &c, verb, reason);
        r = phi_msg_new_error(-EACCES, ret_reply,
                              "audit queries are for the auditor group %s; you are %s, not a member "
                              "(an admin adds you to %s)",
                              d->config->auditor_group, c.name, d->config->auditor_group);
        return r < 0 ? r : 0;
}

/*
 * Every page after the first comes with a seal: a MAC, under a key made at
 * the daemon's start, of the caller's uid, the query (its filters, or the
 * export's range) and the cursor. Without it the journaling of the first page
 * could be skipped by asking for "page two" from seq 0, and an auditor could
 * read the log without a trace of it. SipHash-2-4 (crypto_shorthash) is a MAC
 * for short inputs; its 64 bits fit the cursor's number pairs, and a forged
 * seal is one guess a request. A restarted daemon has a new key: the listing
 * is asked again from its start, and journaled again.
 */
static uint8_t seal_key[crypto_shorthash_KEYBYTES];
static bool seal_key_made;

static void seal_put_str(crypto_generichash_state *st, const char *s) {
        (void) crypto_generichash_update(st, (const uint8_t *) s, strlen(s) + 1);
}

static void seal_put_u64(crypto_generichash_state *st, uint64_t v) {
        uint8_t b[8];

        for (int i = 0; i < 8; i++)
                b[i] = (uint8_t) (v >> (8 * i));
        (void) crypto_generichash_update(st, b, sizeof(b));
}

/* The seal of (caller, what, f, a, b): the fields hashed to 32 bytes first,
 * since crypto_shorthash takes one buffer. */
static uint64_t seal_of(const struct phi_caller *caller, const char *what, const struct phi_audit_filter *f,
                        uint64_t a, uint64_t b) {
        crypto_generichash_state st;
        uint8_t digest[32], mac[crypto_shorthash_BYTES];
        uint64_t v = 0;

        if (!seal_key_made) {
                crypto_shorthash_keygen(seal_key);
                seal_key_made = true;
        }
        (void) crypto_generichash_init(&st, NULL, 0, sizeof(digest));
        seal_put_str(&st, what);
        seal_put_u64(&st, caller->uid);
        seal_put_str(&st, f->event);
        seal_put_str(&st, f->user);
        seal_put_str(&st, f->actor);
        seal_put_str(&st, f->role);
        seal_put_str(&st, f->request_id);
        seal_put_str(&st, f->host);
        seal_put_u64(&st, f->since_us);
        seal_put_u64(&st, f->until_us);
        seal_put_u64(&st, a);
        seal_put_u64(&st, b);
        (void) crypto_generichash_final(&st, digest, sizeof(digest));
        (void) crypto_shorthash(mac, digest, sizeof(digest), seal_key);
        for (int i = 0; i < 8; i++)
                v |= (uint64_t) mac[i] << (8 * i);
        return v;
}

/* The value of the request's KEY NUMBER pair named key. */
static int cursor_get(const phi_msg *req, const char *key, uint64_t *ret) {
        size_t n = phi_msg_field_count(req);

        for (size_t i = 0; i + 1 < n; i++) {
                uint16_t tag, next;
                const void *k;

                if (phi_msg_field(req, i, &tag, NULL, &k, NULL) < 0 || tag != PHI_TAG_KEY || strcmp(k, key) != 0 ||
                    phi_msg_field(req, i + 1, &next, NULL, NULL, NULL) < 0 || next != PHI_TAG_NUMBER)
                        continue;
                return phi_msg_field_u64(req, i + 1, ret);
        }
        return -ENOENT;
}

static bool seal_valid(const phi_msg *req, const struct phi_caller *caller, const char *what,
                       const struct phi_audit_filter *f, uint64_t a, uint64_t b) {
        uint64_t seal;

        return cursor_get(req, "seal", &seal) == 0 && sodium_memcmp(&seal, &(uint64_t){ seal_of(caller, what, f, a, b) },
                                                                    sizeof(seal)) == 0;
}

/* Only the cursor's own names: a misspelt one must not pass as "no cursor". */
static bool cursor_keys_valid(const phi_msg *req, const char *const *names, size_t n_names) {
        for (size_t i = 0, n = phi_msg_field_count(req); i < n; i++) {
                uint16_t tag;
                const void *k;
                bool known = false;

                if (phi_msg_field(req, i, &tag, NULL, &k, NULL) < 0 || tag != PHI_TAG_KEY)
                        continue;
                for (size_t j = 0; j < n_names; j++)
                        known |= strcmp(k, names[j]) == 0;
                if (!known)
                        return false;
        }
        return true;
}

static void iso_time(uint64_t t, char *buf, size_t len) {
        struct tm tm;
        time_t tt = (time_t) t;

        if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, len, "%llu", (unsigned long long) t);
}

/* The query itself, in the journal and so in the audit log (the journal's
 * hook): who asked, and what for. */
static void journal_query(const struct phi_caller *caller, const char *what, const char *filters) {
        const struct phi_journal_field fields[] = {
                { "PHI_ACTOR", caller->name },
                { "PHI_SERVICE", "phictl" },
                { "PHI_REASON", filters },
        };
        phi_journal_event_async(PHI_EVENT_AUDIT_QUERY, LOG_NOTICE, fields, PHI_ELEMENTSOF(fields),
                                "Audit %s by %s: %s", what, caller->name, filters);
}

static void append(char *buf, size_t len, const char *name, const char *value) {
        size_t used = strlen(buf);

        if (!value || !value[0] || used >= len)
                return;
        snprintf(buf + used, len - used, "%s%s=%s", used ? " " : "", name, value);
}

static void append_time(char *buf, size_t len, const char *name, uint64_t t) {
        char iso[32];

        if (!t)
                return;
        iso_time(t, iso, sizeof(iso));
        append(buf, len, name, iso);
}

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

static int unhex(const char *hex, uint8_t *out, size_t n) {
        if (strlen(hex) != 2 * n)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EBADMSG;
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        return 0;
}

/* Proofs from the stored leaf hashes. A proof hashes runs of consecutive
 * leaves, so a miss reads the next LEAF_CACHE rows at once (a range read,
 * not a look-up a leaf). */
#define LEAF_CACHE 1024
struct leaf_cache {
        phi_store *store;
        uint64_t base;
        size_t n;
        uint8_t hash[LEAF_CACHE][PHI_AUDIT_HASH_SIZE];
};

static int store_leaf(void *userdata, uint64_t index, uint8_t ret[PHI_AUDIT_HASH_SIZE]) {
        struct leaf_cache *c = userdata;
        int r = 0;

        if (index < c->base || index >= c->base + c->n) {
                struct phi_audit_row *rows = NULL;
                size_t n = 0;

                c->base = index;
                c->n = 0;
                if ((r = phi_store_audit_rows(c->store, NULL, index, LEAF_CACHE, &rows, &n)) < 0)
                        return r;
                for (size_t i = 0; i < n && r >= 0; i++)
                        if (rows[i].seq != index + i || unhex(rows[i].leaf_hash, c->hash[i], PHI_AUDIT_HASH_SIZE) < 0)
                                r = -EUCLEAN;
                if (r >= 0)
                        c->n = n;
                phi_audit_rows_free(rows, n);
                if (r < 0)
                        return r;
                if (c->n == 0)
                        return -ENOENT;
        }
        memcpy(ret, c->hash[index - c->base], PHI_AUDIT_HASH_SIZE);
        return 0;
}

/* The tree of the first `size` records from their stored leaf hashes, read
 * in seq order a batch at a time (one range read, not a look-up a leaf: the
 * header of an export of the newest tenth of a million records reads 900,000). */
static int store_tree(phi_store *s, uint64_t size, struct phi_audit_tree *ret) {
        int r = 0;

        phi_audit_tree_init(ret);
        while (ret->size < size && r >= 0) {
                struct phi_audit_row *rows = NULL;
                size_t n = 0;

                if ((r = phi_store_audit_rows(s, NULL, ret->size, ROW_BATCH * 8, &rows, &n)) < 0)
                        break;
                if (n == 0)
                        r = -EUCLEAN;
                for (size_t i = 0; i < n && ret->size < size && r >= 0; i++) {
                        uint8_t h[PHI_AUDIT_HASH_SIZE];
                        if (rows[i].seq != ret->size || unhex(rows[i].leaf_hash, h, sizeof(h)) < 0)
                                r = -EUCLEAN;
                        else
                                r = phi_audit_tree_append_hash(ret, h);
                }
                phi_audit_rows_free(rows, n);
        }
        return r;
}

/* The committed tree's size, from the store (the verifier writes it with the
 * records, in the same transaction). */
static int store_size(phi_store *s, uint64_t *ret) {
        char hex[2 * PHI_AUDIT_TREE_SAVED_MAX + 1];
        uint8_t saved[PHI_AUDIT_TREE_SAVED_MAX];
        struct phi_audit_tree t;
        size_t n;
        int r = phi_store_audit_tree_get(s, hex, sizeof(hex));

        if (r == -ENOENT) {
                *ret = 0;
                return 0;
        }
        if (r < 0)
                return r;
        n = strlen(hex) / 2;
        if (n > sizeof(saved) || unhex(hex, saved, n) < 0 || phi_audit_tree_restore(&t, saved, n) < 0)
                return -EUCLEAN;
        *ret = t.size;
        return 0;
}

/* ---------------------------------------------------------------- queries */

static int text_filter(const phi_msg *req, uint16_t tag, char *dst, size_t size, const char *what,
                       phi_msg **ret_reply) {
        const char *s = NULL;

        if (phi_msg_get_str(req, tag, &s) < 0)
                return 1;
        if (strlen(s) >= size)
                return phi_msg_new_error(-EINVAL, ret_reply, "--%s: longer than any %s in the audit log (%zu bytes)",
                                         what, what, size - 1);
        snprintf(dst, size, "%s", s);
        return 1;
}

static bool same(const char *column, const char *field) {
        return strcmp(column, field ? field : "") == 0;
}

static bool leaf_matches(const struct phi_audit_filter *f, const struct phi_audit_record *x) {
        return (!f->event[0] || same(f->event, x->event)) && (!f->user[0] || same(f->user, x->user)) &&
               (!f->actor[0] || same(f->actor, x->actor)) && (!f->role[0] || same(f->role, x->role)) &&
               (!f->request_id[0] || same(f->request_id, x->request_id)) && (!f->host[0] || same(f->host, x->host)) &&
               (!f->since_us || x->time_us >= f->since_us) && (!f->until_us || x->time_us < f->until_us);
}

/* What is wrong with a row, as a sentence into buf; false when nothing. */
static bool row_mismatch(const struct phi_audit_row *row, const struct phi_audit_parsed *p, char *buf, size_t len) {
        const struct phi_audit_record *x = &p->rec;
        uint8_t hash[PHI_AUDIT_HASH_SIZE], stored[PHI_AUDIT_HASH_SIZE];
        const struct {
                const char *name, *column, *field;
        } cols[] = {
                { "event", row->event, x->event },   { "user_name", row->user, x->user },
                { "actor", row->actor, x->actor },   { "role", row->role, x->role },
                { "request_id", row->request_id, x->request_id }, { "host", row->host, x->host },
        };

        if (x->seq != row->seq) {
                snprintf(buf, len, "seq %llu: the row holds the record of seq %llu", (unsigned long long) row->seq,
                         (unsigned long long) x->seq);
                return true;
        }
        if (x->time_us != row->time_us) {
                snprintf(buf, len, "seq %llu: the stored time_us column says %llu, its record %llu",
                         (unsigned long long) row->seq, (unsigned long long) row->time_us,
                         (unsigned long long) x->time_us);
                return true;
        }
        for (size_t i = 0; i < PHI_ELEMENTSOF(cols); i++)
                if (!same(cols[i].column, cols[i].field)) {
                        snprintf(buf, len, "seq %llu: the stored %s column says '%s', its record '%s'",
                                 (unsigned long long) row->seq, cols[i].name, cols[i].column,
                                 cols[i].field ? cols[i].field : "");
                        return true;
                }
        phi_audit_leaf_hash(row->leaf, strlen(row->leaf), hash);
        if (unhex(row->leaf_hash, stored, sizeof(stored)) < 0 || memcmp(hash, stored, sizeof(hash)) != 0) {
                snprintf(buf, len, "seq %llu: the stored leaf hash is not the hash of its record",
                         (unsigned long long) row->seq);
                return true;
        }
        return false;
}

int phi_handle_audit_query(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                           phi_msg **ret_reply, uint64_t *ret_ticket) {
        static const char *const keys[] = { "next", "seal" };
        _cleanup_msg_ phi_msg *m = NULL;
        _cleanup_free_ struct phi_audit_parsed *p = NULL;
        struct phi_audit_filter f = { 0 };
        uint64_t next = 0, start = 0, until = 0;
        size_t scanned = 0;
        bool more = false, first_page;
        int r;

        (void) ret_ticket;
        if ((r = auditor_only(d, caller, "audit", ret_reply)) <= 0)
                return r;
        if ((r = text_filter(req, PHI_TAG_USER, f.user, sizeof(f.user), "user", ret_reply)) <= 0 ||
            (r = text_filter(req, PHI_TAG_ACTOR, f.actor, sizeof(f.actor), "actor", ret_reply)) <= 0 ||
            (r = text_filter(req, PHI_TAG_ROLE, f.role, sizeof(f.role), "role", ret_reply)) <= 0 ||
            (r = text_filter(req, PHI_TAG_EVENT, f.event, sizeof(f.event), "event", ret_reply)) <= 0 ||
            (r = text_filter(req, PHI_TAG_HOST, f.host, sizeof(f.host), "host", ret_reply)) <= 0 ||
            (r = text_filter(req, PHI_TAG_REQUEST, f.request_id, sizeof(f.request_id), "request", ret_reply)) <= 0)
                return r;
        if (phi_msg_get_u64(req, PHI_TAG_START, &start) < 0)
                start = 0;
        if (phi_msg_get_u64(req, PHI_TAG_UNTIL, &until) < 0)
                until = 0;
        if (start > UINT64_MAX / 1000000 || until > UINT64_MAX / 1000000 || (until && start >= until))
                return phi_msg_new_error(-EINVAL, ret_reply, "the time range is empty or out of range");
        f.since_us = start * 1000000;
        f.until_us = until * 1000000;
        if (!cursor_keys_valid(req, keys, PHI_ELEMENTSOF(keys)))
                return phi_msg_new_error(-EINVAL, ret_reply, "an audit query's cursor is only 'next' and 'seal'");
        first_page = cursor_get(req, "next", &next) == -ENOENT;
        if (!first_page && !seal_valid(req, caller, "query", &f, next, 0))
                return phi_msg_new_error(-EINVAL, ret_reply, "this page's cursor was not given to you for this "
                                         "query by this phiaccessd (it may have restarted): run the query again");

        if (first_page) {
                char filters[1024] = "";
                append(filters, sizeof(filters), "user", f.user);
                append(filters, sizeof(filters), "actor", f.actor);
                append(filters, sizeof(filters), "role", f.role);
                append(filters, sizeof(filters), "event", f.event);
                append(filters, sizeof(filters), "host", f.host);
                append(filters, sizeof(filters), "request", f.request_id);
                append_time(filters, sizeof(filters), "since", start);
                append_time(filters, sizeof(filters), "until", until);
                journal_query(caller, "query", filters[0] ? filters : "all records");
                /* The first record of the range, by the stored time: the
                 * scan starts there (times follow seq but for the moments a
                 * record waits in the verifier's queue). */
                if (f.since_us) {
                        const struct phi_audit_filter t = { .since_us = f.since_us };
                        struct phi_audit_row *rows = NULL;
                        size_t n = 0;
                        if ((r = phi_store_audit_rows(d->store, &t, 0, 1, &rows, &n)) < 0)
                                return phi_msg_new_error(r, ret_reply, "cannot read the audit log: %s",
                                                         phi_errno_text(r));
                        next = n ? rows[0].seq : UINT64_MAX;
                        phi_audit_rows_free(rows, n);
                }
        }
        m = phi_msg_new(PHI_MSG_OK);
        p = malloc(sizeof(*p));
        if (!m || !p)
                return -ENOMEM;
        while (next != UINT64_MAX && scanned < QUERY_SCAN && r >= 0) {
                struct phi_audit_row *rows = NULL;
                size_t n = 0, i;

                if ((r = phi_store_audit_rows(d->store, NULL, next, ROW_BATCH, &rows, &n)) < 0)
                        break;
                for (i = 0; i < n && r >= 0; i++) {
                        const struct phi_audit_row *row = &rows[i];
                        const char *error = NULL;
                        char report[MISMATCH_ROOM];
                        bool bad, show;

                        if (phi_audit_record_parse(row->leaf, strlen(row->leaf), p, &error) < 0) {
                                snprintf(report, sizeof(report), "seq %llu: the stored record does not parse: %s",
                                         (unsigned long long) row->seq, error);
                                bad = true;
                                show = false;
                        } else {
                                bad = row_mismatch(row, p, report, sizeof(report));
                                show = leaf_matches(&f, &p->rec);
                        }
                        if (phi_msg_room(m) < (show ? strlen(row->leaf) + PHI_WIRE_FIELD_HEADER : 0) +
                                                      (bad ? MISMATCH_ROOM : 0) + TRAILER_ROOM)
                                break;
                        if ((bad && (r = phi_msg_put_pair(m, "mismatch", report)) < 0) ||
                            (show && (r = phi_msg_put_str(m, PHI_TAG_LINE, row->leaf)) < 0))
                                break;
                        next = row->seq + 1;
                        scanned++;
                }
                more = i < n || n == ROW_BATCH;
                phi_audit_rows_free(rows, n);
                if (i < n || n < ROW_BATCH)
                        break;
        }
        if (r < 0)
                return phi_msg_new_error(r, ret_reply, "cannot read the audit log: %s", phi_errno_text(r));
        if ((r = phi_msg_put_number(m, "next", next == UINT64_MAX ? 0 : next)) < 0 ||
            (r = phi_msg_put_flag(m, "more", more && next != UINT64_MAX)) < 0 ||
            (more && next != UINT64_MAX &&
             (r = phi_msg_put_number(m, "seal", seal_of(caller, "query", &f, next, 0))) < 0))
                return r;
        *ret_reply = PHI_TAKE_PTR(m);
        return 0;
}

/* ---------------------------------------------------------------- exports */

/* The lowest seq at or after `from` whose stored time is at least t_us;
 * *ret = limit when none. */
static int seq_at_time(phi_store *s, uint64_t from, uint64_t t_us, uint64_t limit, uint64_t *ret) {
        const struct phi_audit_filter f = { .since_us = t_us };
        struct phi_audit_row *rows = NULL;
        size_t n = 0;
        int r = phi_store_audit_rows(s, &f, from, 1, &rows, &n);

        if (r < 0)
                return r;
        *ret = n && rows[0].seq < limit ? rows[0].seq : limit;
        phi_audit_rows_free(rows, n);
        return 0;
}

/* The newest checkpoint, as the verifier last committed it. */
static int newest_checkpoint(struct phi_daemon *d, struct phi_audit_checkpoint_row **ret, size_t *ret_n) {
        uint64_t size = 0, cp = 0;
        char vkey[8];

        phi_verifier_audit_state(d->verifier, &size, &cp, vkey, sizeof(vkey));
        *ret = NULL;
        *ret_n = 0;
        if (cp == 0)
                return 0;
        return phi_store_audit_checkpoints(d->store, cp, 1, ret, ret_n);
}

struct export_page {
        phi_msg *m;
        char *line;             /* PHI_AUDIT_EXPORT_LINE_MAX */
};

/* The line just written into pg->line (NUL-terminated), into the reply. */
static int put_line(struct export_page *pg) {
        return phi_msg_put_str(pg->m, PHI_TAG_LINE, pg->line);
}

/* The last line: the newest checkpoint with the consistency proof from end.
 * 1 when written, 0 when it waits for the next page (no room). */
static int export_tail(struct phi_daemon *d, struct export_page *pg, uint64_t end, const char **ret_error) {
        uint8_t(*proof)[PHI_AUDIT_HASH_SIZE] = NULL;
        struct leaf_cache *cache = NULL;
        struct phi_audit_checkpoint_row *cps = NULL;
        size_t n = 0, n_proof = 0, len = 0;
        int r;

        if (phi_msg_room(pg->m) < PHI_AUDIT_EXPORT_LINE_MAX + PHI_WIRE_FIELD_HEADER + TRAILER_ROOM)
                return 0;
        if ((r = newest_checkpoint(d, &cps, &n)) < 0)
                return r;
        if (n == 0 || cps[0].size < end) {
                *ret_error = "no signed checkpoint covers the export's end";
                r = -EAGAIN;
                goto out;
        }
        proof = calloc(PHI_AUDIT_CONSISTENCY_MAX, PHI_AUDIT_HASH_SIZE);
        cache = malloc(sizeof(*cache));
        if (!proof || !cache) {
                r = -ENOMEM;
                goto out;
        }
        *cache = (struct leaf_cache){ .store = d->store };
        if ((r = phi_audit_consistency_proof(end, cps[0].size, store_leaf, cache, proof, &n_proof)) < 0) {
                *ret_error = "the consistency proof cannot be computed from the stored leaf hashes";
                goto out;
        }
        if ((r = phi_audit_export_checkpoint(cps[0].note, strlen(cps[0].note),
                                             (const uint8_t(*)[PHI_AUDIT_HASH_SIZE]) proof, n_proof, pg->line,
                                             PHI_AUDIT_EXPORT_LINE_MAX, &len)) < 0) {
                *ret_error = "the newest checkpoint cannot be written as an export line";
                goto out;
        }
        r = put_line(pg);
        if (r >= 0)
                r = 1;
out:
        free(proof);
        free(cache);
        phi_audit_checkpoint_rows_free(cps, n);
        return r;
}

/* Record lines from *next up to end, each followed by the stored checkpoint
 * its record completes (those inside the run; the last line is another). */
static int export_records(struct phi_daemon *d, struct export_page *pg, uint64_t *next, uint64_t end,
                          const char **ret_error) {
        struct phi_audit_checkpoint_row *cps = NULL;
        size_t n_cps = 0, k = 0;
        uint64_t stop = end;
        int r;

        if ((r = phi_store_audit_checkpoints(d->store, *next + 1, EXPORT_CHECKPOINTS, &cps, &n_cps)) < 0)
                return r;
        /* Past the checkpoints read, another one may be due: stop there. */
        if (n_cps == EXPORT_CHECKPOINTS && cps[n_cps - 1].size < stop)
                stop = cps[n_cps - 1].size;
        while (*next < stop && r >= 0) {
                struct phi_audit_row *rows = NULL;
                size_t n = 0, i;
                bool full = false;

                if ((r = phi_store_audit_rows(d->store, NULL, *next, ROW_BATCH, &rows, &n)) < 0)
                        break;
                if (n == 0) {
                        *ret_error = "the store lacks records the tree has";
                        r = -EUCLEAN;
                }
                for (i = 0; i < n && *next < stop && r >= 0; i++) {
                        size_t len = 0, cp_len = 0;
                        if (rows[i].seq != *next) {
                                *ret_error = "a record is missing from the store";
                                r = -EUCLEAN;
                                break;
                        }
                        while (k < n_cps && cps[k].size <= *next)
                                k++;
                        /* A checkpoint this record completes goes in the same page. */
                        if (k < n_cps && cps[k].size == *next + 1 && cps[k].size < end)
                                cp_len = 2 * strlen(cps[k].note) + 128;
                        if ((r = phi_audit_export_record(rows[i].leaf, strlen(rows[i].leaf), pg->line,
                                                         PHI_AUDIT_EXPORT_LINE_MAX, &len)) < 0) {
                                *ret_error = "a stored record cannot be written as an export line";
                                break;
                        }
                        if (phi_msg_room(pg->m) < len + cp_len + 2 * PHI_WIRE_FIELD_HEADER + TRAILER_ROOM) {
                                full = true;
                                break;
                        }
                        if ((r = put_line(pg)) < 0)
                                break;
                        (*next)++;
                        if (cp_len) {
                                if ((r = phi_audit_export_checkpoint(cps[k].note, strlen(cps[k].note), NULL, 0,
                                                                     pg->line, PHI_AUDIT_EXPORT_LINE_MAX, &len)) < 0 ||
                                    (r = put_line(pg)) < 0)
                                        break;
                                k++;
                        }
                }
                phi_audit_rows_free(rows, n);
                if (full)
                        break;
        }
        phi_audit_checkpoint_rows_free(cps, n_cps);
        return r;
}

int phi_handle_audit_export(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                            phi_msg **ret_reply, uint64_t *ret_ticket) {
        static const char *const keys[] = { "next", "end", "seal" };
        _cleanup_msg_ phi_msg *m = NULL;
        _cleanup_free_ char *line = NULL;
        const char *error = NULL;
        uint64_t start = 0, until = 0, size = 0, first = 0, next = 0, end = 0, asked_end = 0;
        struct phi_audit_filter range = { 0 };
        static const struct phi_audit_filter none = { 0 };
        bool first_page, retry, done = false;
        int r;

        (void) ret_ticket;
        if ((r = auditor_only(d, caller, "audit export", ret_reply)) <= 0)
                return r;
        if (!d->verifier)
                return phi_msg_new_error(-EIO, ret_reply,
                                         "no audit log to export: the daemon has no master key, so its verifier "
                                         "(which writes the log) did not start");
        if (phi_msg_get_u64(req, PHI_TAG_START, &start) < 0)
                start = 0;
        if (phi_msg_get_u64(req, PHI_TAG_UNTIL, &until) < 0)
                until = 0;
        if (start > UINT64_MAX / 1000000 || until > UINT64_MAX / 1000000 || (until && start >= until))
                return phi_msg_new_error(-EINVAL, ret_reply, "the time range is empty or out of range");
        if (!cursor_keys_valid(req, keys, PHI_ELEMENTSOF(keys)))
                return phi_msg_new_error(-EINVAL, ret_reply, "an export's cursor is only 'next', 'end' and 'seal'");
        first_page = cursor_get(req, "next", &next) == -ENOENT;
        retry = cursor_get(req, "end", &asked_end) == 0;
        if (!first_page && !retry)
                return phi_msg_new_error(-EINVAL, ret_reply, "an export's next page needs its end");
        range.since_us = start * 1000000;
        range.until_us = until * 1000000;
        /* A retry (end, no next) is a first page not journaled again. */
        /* Later pages carry no range (next and end say where they are). */
        if (retry && !seal_valid(req, caller, first_page ? "export-retry" : "export", first_page ? &range : &none,
                                 first_page ? 0 : next, asked_end))
                return phi_msg_new_error(-EINVAL, ret_reply, "this page's cursor was not given to you for this "
                                         "export by this phiaccessd (it may have restarted): export again");
        if ((r = store_size(d->store, &size)) < 0)
                return phi_msg_new_error(r, ret_reply, "cannot read the audit log's tree: %s", phi_errno_text(r));

        m = phi_msg_new(PHI_MSG_OK);
        line = malloc(PHI_AUDIT_EXPORT_LINE_MAX);
        if (!m || !line)
                return -ENOMEM;
        struct export_page pg = { .m = m, .line = line };

        if (first_page) {
                struct phi_audit_checkpoint_row *cps = NULL;
                size_t n_cps = 0;
                uint64_t covered;

                if ((start && (r = seq_at_time(d->store, 0, start * 1000000, size, &first)) < 0) ||
                    (until && (r = seq_at_time(d->store, first, until * 1000000, size, &end)) < 0))
                        return phi_msg_new_error(r, ret_reply, "cannot read the audit log: %s", phi_errno_text(r));
                if (!until)
                        end = size;
                if (!start)
                        first = 0;
                if (!retry) {
                        char filters[256] = "export";
                        append_time(filters, sizeof(filters), "since", start);
                        append_time(filters, sizeof(filters), "until", until);
                        journal_query(caller, "export", filters);
                }
                if ((r = newest_checkpoint(d, &cps, &n_cps)) < 0)
                        return phi_msg_new_error(r, ret_reply, "cannot read the checkpoints: %s", phi_errno_text(r));
                covered = n_cps ? cps[0].size : 0;
                phi_audit_checkpoint_rows_free(cps, n_cps);
                /* Asked again: the end the first try wanted must be covered
                 * now; what came since (this export's own audit_query, say)
                 * is in as far as the checkpoint goes. */
                if (retry && covered >= asked_end && covered > 0 && end > covered)
                        end = covered < first ? first : covered;
                if (covered < (retry ? asked_end : end) || covered == 0) {
                        /* Its audit_query record, on its way, brings one. */
                        uint64_t e = retry ? asked_end : end;
                        if ((r = phi_msg_put_flag(m, "retry", true)) < 0 ||
                            (r = phi_msg_put_number(m, "end", e)) < 0 ||
                            (r = phi_msg_put_number(m, "seal", seal_of(caller, "export-retry", &range, 0, e))) < 0)
                                return r;
                        *ret_reply = PHI_TAKE_PTR(m);
                        return 0;
                }
                struct phi_audit_tree left;
                size_t len = 0;
                if ((r = store_tree(d->store, first, &left)) < 0)
                        return phi_msg_new_error(r, ret_reply,
                                                 "cannot build the tree of the %llu records before the export "
                                                 "from the stored leaf hashes: %s",
                                                 (unsigned long long) first, phi_errno_text(r));
                if ((r = phi_audit_export_header(&left, line, PHI_AUDIT_EXPORT_LINE_MAX, &len)) < 0 ||
                    (r = put_line(&pg)) < 0)
                        return r;
                next = first;
        } else {
                end = asked_end;
                if (next > end || end > size)
                        return phi_msg_new_error(-EINVAL, ret_reply,
                                                 "an export's cursor beyond the log (next %llu, end %llu, %llu records)",
                                                 (unsigned long long) next, (unsigned long long) end,
                                                 (unsigned long long) size);
        }
        r = export_records(d, &pg, &next, end, &error);
        if (r >= 0 && next == end) {
                r = export_tail(d, &pg, end, &error);
                done = r == 1;
        }
        if (r < 0)
                return phi_msg_new_error(r, ret_reply, "cannot export the audit log at record %llu: %s",
                                         (unsigned long long) next, error ? error : phi_errno_text(r));
        if ((first_page && (r = phi_msg_put_number(m, "first", first)) < 0) ||
            (r = phi_msg_put_number(m, "next", next)) < 0 || (r = phi_msg_put_number(m, "end", end)) < 0 ||
            (r = phi_msg_put_flag(m, "more", !done)) < 0 ||
            (!done && (r = phi_msg_put_number(m, "seal", seal_of(caller, "export", &none, next, end))) < 0))
                return r;
        *ret_reply = PHI_TAKE_PTR(m);
        return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Verification of the stored audit log; see audit_verify.h. */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "audit_verify.h"
#include "journal.h"
#include "phi/client.h"

/* Rows read per query: one page costs a few milliseconds, and the thread
 * looks at the cancel flag between pages. */
#define PAGE_ROWS 512
#define PAGE_CHECKPOINTS 1024
/* Checkpoints taken into account, stored and journaled together: one is
 * made every 1,000 records at least, so this covers billions of records;
 * past it the verification says it cannot check (never silently less). */
#define CHECKPOINTS_MAX (UINT64_C(16) << 20)

enum {
        SRC_STORE = 1 << 0,
        SRC_JOURNAL = 1 << 1,
};

struct cp {
        uint64_t size;
        uint8_t root[PHI_AUDIT_HASH_SIZE];
        unsigned src;
        const char *bad;        /* a stored checkpoint that did not open: why (static) */
};

struct run {
        const struct phi_audit_verify_input *in;
        struct phi_audit_verify_result *res;
        struct phi_audit_verifier keys[PHI_AUDIT_KEYS_MAX];    /* [0]: this daemon's */
        size_t n_keys;
        char origin[PHI_AUDIT_NAME_MAX + 1];
        struct cp *cps;
        size_t n_cps, cap_cps;
        uint64_t good;          /* records proven by a matching checkpoint so far */
};

const char *phi_audit_verify_outcome_name(enum phi_audit_verify_outcome o) {
        static const char *const names[] = {
                [PHI_AUDIT_VERIFY_OK] = "ok",
                [PHI_AUDIT_VERIFY_RECORD] = "record",
                [PHI_AUDIT_VERIFY_ROOT] = "root",
                [PHI_AUDIT_VERIFY_SIGNATURE] = "signature",
                [PHI_AUDIT_VERIFY_TRUNCATED] = "truncated",
                [PHI_AUDIT_VERIFY_BEHIND] = "behind-journal",
                [PHI_AUDIT_VERIFY_ERROR] = "error",
        };
        return (size_t) o < PHI_ELEMENTSOF(names) ? names[o] : "error";
}

static int fail(struct run *x, enum phi_audit_verify_outcome o, bool has_seq, uint64_t seq, const char *fmt, ...)
        _phi_printf_(5, 6);
static int fail(struct run *x, enum phi_audit_verify_outcome o, bool has_seq, uint64_t seq, const char *fmt, ...) {
        va_list ap;

        x->res->outcome = o;
        x->res->has_bad_seq = has_seq;
        x->res->bad_seq = has_seq ? seq : 0;
        va_start(ap, fmt);
        vsnprintf(x->res->what, sizeof(x->res->what), fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

static int cp_add(struct run *x, const struct cp *c) {
        if (x->n_cps == x->cap_cps) {
                size_t cap = x->cap_cps ? 2 * x->cap_cps : 256;
                struct cp *v;
                if (cap > CHECKPOINTS_MAX)
                        return fail(x, PHI_AUDIT_VERIFY_ERROR, false, 0,
                                    "more than %" PRIu64 " checkpoints: not checked", CHECKPOINTS_MAX);
                v = realloc(x->cps, cap * sizeof(*v));
                if (!v)
                        return fail(x, PHI_AUDIT_VERIFY_ERROR, false, 0, "out of memory");
                x->cps = v;
                x->cap_cps = cap;
        }
        x->cps[x->n_cps++] = *c;
        return 0;
}

static int cp_cmp(const void *a, const void *b) {
        const struct cp *p = a, *q = b;

        if (p->size != q->size)
                return p->size < q->size ? -1 : 1;
        /* At one size, the store's first: a journal copy merges into it. */
        return (int) (p->src & SRC_JOURNAL) - (int) (q->src & SRC_JOURNAL);
}

/* Opens a note as a checkpoint of this log: a trusted key signed it (own:
 * this daemon's only), and it names the log's origin. NULL, or why not. */
static const char *cp_open(struct run *x, const char *note, size_t n, bool own, struct cp *ret) {
        struct phi_audit_checkpoint c;
        const char *err = NULL;
        size_t k = 0;

        if (phi_audit_checkpoint_open(note, n, x->keys, own ? 1 : x->n_keys, &c, &k, &err) < 0)
                return err ? err : "not a signed checkpoint";
        if (strcmp(c.origin, x->origin) != 0)
                return "it names another log (origin)";
        ret->size = c.size;
        memcpy(ret->root, c.root, sizeof(c.root));
        return NULL;
}

static int load_stored(struct run *x) {
        uint64_t from = 0;

        for (;;) {
                struct phi_audit_checkpoint_row *rows = NULL;
                size_t n = 0;
                int r = phi_store_audit_checkpoints(x->in->store, from, PAGE_CHECKPOINTS, &rows, &n);
                if (r < 0)
                        return fail(x, PHI_AUDIT_VERIFY_ERROR, false, 0, "cannot read the stored checkpoints: %s",
                                    phi_errno_text(r));
                for (size_t i = 0; i < n && r == 0; i++) {
                        struct cp c = { .src = SRC_STORE };
                        c.bad = cp_open(x, rows[i].note, strlen(rows[i].note), false, &c);
                        if (c.bad)
                                c.size = rows[i].size;  /* where it claims to be */
                        else if (c.size != rows[i].size)
                                c.bad = "its note is of another size than its row";
                        if (!c.bad)
                                x->res->checkpoints++;
                        r = cp_add(x, &c);
                        from = rows[i].size + 1;
                }
                phi_audit_checkpoint_rows_free(rows, n);
                if (r < 0)
                        return r;
                if (n < PAGE_CHECKPOINTS)
                        return 0;
        }
}

static int journal_field(sd_journal *j, const char *field, const char **ret, size_t *ret_len) {
        const void *data = NULL;
        size_t len = 0, flen = strlen(field);
        int r = sd_journal_get_data(j, field, &data, &len);

        if (r < 0)
                return r;
        if (len <= flen || ((const char *) data)[flen] != '=')
                return -EBADMSG;
        *ret = (const char *) data + flen + 1;
        *ret_len = len - flen - 1;
        return 0;
}

/* The journal's checkpoints of this log. Anyone may write a journal entry
 * that looks like one, so only what the log's key signed counts; the rest is
 * counted as ignored. */
static int load_journal(struct run *x) {
        _cleanup_free_ char *match = NULL;
        sd_journal *j = NULL;
        int r;

        if (asprintf(&match, "PHI_AUDIT_ORIGIN=%s", x->origin) < 0) {
                match = NULL;
                return fail(x, PHI_AUDIT_VERIFY_ERROR, false, 0, "out of memory");
        }
        r = x->in->journal_dir ? sd_journal_open_directory(&j, x->in->journal_dir, 0)
                               : sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
        if (r < 0)
                return fail(x, PHI_AUDIT_VERIFY_ERROR, false, 0, "cannot open the journal%s%s: %s",
                            x->in->journal_dir ? " in " : "", x->in->journal_dir ? x->in->journal_dir : "",
                            phi_errno_text(r));
        (void) sd_journal_set_data_threshold(j, PHI_AUDIT_NOTE_MAX + 64);
        if ((r = sd_journal_add_match(j, "PHI_EVENT=checkpoint", 0)) < 0 || (r = sd_journal_add_match(j, match, 0)) < 0)
                goto out;
        SD_JOURNAL_FOREACH(j) {
                const char *note = NULL;
                struct cp c = { .src = SRC_JOURNAL };
                size_t len = 0;

                if (x->in->cancel && *x->in->cancel)
                        break;
                if (journal_field(j, "PHI_CHECKPOINT", &note, &len) < 0 || len > PHI_AUDIT_NOTE_MAX ||
                    cp_open(x, note, len, true, &c)) {
                        x->res->journal_ignored++;
                        continue;
                }
                if ((r = cp_add(x, &c)) < 0)
                        break;
                if (c.size > x->res->journal_newest)
                        x->res->journal_newest = c.size;
        }
out:
        sd_journal_close(j);
        if (r < 0 && x->res->outcome == PHI_AUDIT_VERIFY_OK)
                return fail(x, PHI_AUDIT_VERIFY_ERROR, false, 0, "cannot read the journal: %s", phi_errno_text(r));
        return r < 0 ? r : 0;
}

/* Sorted by size; a journal copy of a stored checkpoint (same size, same
 * root) merges into it, and repeats of one journal checkpoint into one. */
static void cps_merge(struct run *x) {
        size_t out = 0;

        if (x->n_cps == 0)
                return;
        qsort(x->cps, x->n_cps, sizeof(*x->cps), cp_cmp);
        for (size_t i = 0; i < x->n_cps; i++) {
                struct cp *c = &x->cps[i];
                bool merged = false;
                for (size_t k = out; k-- > 0 && x->cps[k].size == c->size;)
                        if (!x->cps[k].bad && !c->bad && memcmp(x->cps[k].root, c->root, sizeof(c->root)) == 0) {
                                x->cps[k].src |= c->src;
                                merged = true;
                                break;
                        }
                if (!merged)
                        x->cps[out++] = *c;
        }
        x->n_cps = out;
}

static const char *cp_where(const struct cp *c) {
        return (c->src & SRC_STORE) && (c->src & SRC_JOURNAL) ? "stored and journaled"
               : c->src & SRC_STORE                            ? "stored"
                                                              : "journaled";
}

/* The tree has reached the size of checkpoints [*i, ...): each must match. */
static int check_cps_at(struct run *x, size_t *i, const struct phi_audit_tree *t) {
        uint8_t root[PHI_AUDIT_HASH_SIZE];
        bool matched = false;

        phi_audit_tree_root(t, root);
        for (; *i < x->n_cps && x->cps[*i].size == t->size; (*i)++) {
                const struct cp *c = &x->cps[*i];
                uint64_t from = x->good;
                if (c->bad)
                        return fail(x, PHI_AUDIT_VERIFY_SIGNATURE, true, from,
                                    "the stored checkpoint of %" PRIu64 " records is not one of this log: %s; "
                                    "records %" PRIu64 " to %" PRIu64 " are not proven by it",
                                    c->size, c->bad, from, c->size - 1);
                if (sodium_memcmp(root, c->root, sizeof(root)) != 0) {
                        if (t->size == 0)
                                return fail(x, PHI_AUDIT_VERIFY_ROOT, false, 0,
                                            "the %s checkpoint of 0 records has a root that is not the empty "
                                            "tree's", cp_where(c));
                        /* Signed by the log's key, in the journal only: the
                         * store went on from an older state of itself (a
                         * restored backup appended to since) -- or was
                         * rewritten; the journal proves other records. */
                        if (c->src == SRC_JOURNAL)
                                return fail(x, PHI_AUDIT_VERIFY_BEHIND, true, from,
                                            "the store is older than checkpoint %" PRIu64
                                            " in the journal (restored from a backup?): the journal holds a "
                                            "checkpoint of %" PRIu64 " records signed by this log's key that the "
                                            "store's records do not make; records from %" PRIu64
                                            " on differ from those journaled (the store replaced by an older copy "
                                            "and appended to since, or records changed)",
                                            c->size, c->size, from);
                        return fail(x, PHI_AUDIT_VERIFY_ROOT, true, from,
                                    "the records do not make the root of the %s checkpoint of %" PRIu64
                                    " records: one of records %" PRIu64 " to %" PRIu64
                                    " was changed, or records were removed or reordered with their hashes",
                                    cp_where(c), c->size, from, c->size - 1);
                }
                if (c->src & SRC_JOURNAL)
                        x->res->journal_checkpoints++;
                matched = true;
        }
        if (matched)
                x->good = t->size;
        return 0;
}

static int hex_digit(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A leaf hash as the store keeps it: 64 lowercase hex digits, nothing else. */
static bool hash_of_hex(const char *hex, uint8_t out[PHI_AUDIT_HASH_SIZE]) {
        for (size_t i = 0; i < PHI_AUDIT_HASH_SIZE; i++) {
                int hi = hex_digit(hex[2 * i]), lo = hi < 0 ? -1 : hex_digit(hex[2 * i + 1]);
                if (lo < 0)
                        return false;
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        return hex[2 * PHI_AUDIT_HASH_SIZE] == '\0';
}

static bool same(const char *column, const char *leaf) {
        return strcmp(column, leaf ? leaf : "") == 0;
}

/* One row: everything the leaf says and the row's copies of it. */
static int check_row(struct run *x, const struct phi_audit_row *row, uint64_t seq, struct phi_audit_parsed *p,
                     uint8_t hash[PHI_AUDIT_HASH_SIZE]) {
        uint8_t stored[PHI_AUDIT_HASH_SIZE];
        const char *err = NULL, *field = NULL;
        size_t n = strlen(row->leaf);

        if (row->seq != seq)
                return fail(x, PHI_AUDIT_VERIFY_RECORD, true, seq,
                            "record %" PRIu64 " is missing (the next stored record is %" PRIu64
                            "): records were deleted",
                            seq, row->seq);
        if (phi_audit_record_parse(row->leaf, n, p, &err) < 0)
                return fail(x, PHI_AUDIT_VERIFY_RECORD, true, seq, "record %" PRIu64 " is not a canonical record: %s",
                            seq, err ? err : "malformed");
        if (p->rec.seq != seq)
                return fail(x, PHI_AUDIT_VERIFY_RECORD, true, seq,
                            "record %" PRIu64 " holds the leaf of record %" PRIu64 ": records were moved or swapped",
                            seq, p->rec.seq);
        phi_audit_leaf_hash(row->leaf, n, hash);
        if (!hash_of_hex(row->leaf_hash, stored))
                return fail(x, PHI_AUDIT_VERIFY_RECORD, true, seq, "record %" PRIu64 "'s stored leaf hash is malformed",
                            seq);
        /* Public data: no need for a constant-time comparison. */
        if (memcmp(stored, hash, PHI_AUDIT_HASH_SIZE) != 0)
                return fail(x, PHI_AUDIT_VERIFY_RECORD, true, seq,
                            "record %" PRIu64 " was changed: its leaf does not hash to its stored leaf hash", seq);
        if (row->time_us != p->rec.time_us)
                field = "time_us";
        else if (!same(row->event, p->rec.event))
                field = "event";
        else if (!same(row->user, p->rec.user))
                field = "user";
        else if (!same(row->actor, p->rec.actor))
                field = "actor";
        else if (!same(row->role, p->rec.role))
                field = "role";
        else if (!same(row->request_id, p->rec.request_id))
                field = "request_id";
        else if (!same(row->host, p->rec.host))
                field = "host";
        if (field)
                return fail(x, PHI_AUDIT_VERIFY_RECORD, true, seq,
                            "record %" PRIu64 "'s indexed %s differs from its leaf: the row was edited", seq, field);
        return 0;
}

static int saved_tree(struct run *x, struct phi_audit_tree *ret) {
        char hex[2 * PHI_AUDIT_TREE_SAVED_MAX + 1];
        uint8_t buf[PHI_AUDIT_TREE_SAVED_MAX];
        size_t n = 0;
        int r;

        phi_audit_tree_init(ret);
        r = phi_store_audit_tree_get(x->in->store, hex, sizeof(hex));
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return fail(x, PHI_AUDIT_VERIFY_ERROR, false, 0, "cannot read the saved tree: %s", phi_errno_text(r));
        if (sodium_hex2bin(buf, sizeof(buf), hex, strlen(hex), NULL, &n, NULL) != 0 ||
            phi_audit_tree_restore(ret, buf, n) < 0)
                return fail(x, PHI_AUDIT_VERIFY_TRUNCATED, false, 0, "the saved tree (audit_tree) is malformed");
        return 0;
}

/* The records are checked on two threads: this one reads a page of rows
 * and appends their hashes to the tree (and checks the checkpoints on the
 * way), a helper parses, hashes and checks the rows of the page before:
 * each has about half the work (SQLite's reads and the tree's node hashes;
 * the leaves' parsing and hashing). Failures still come in seq order: a
 * page's first bad row is taken only once the rows before it are in the
 * tree. */
struct page {
        struct phi_audit_row *rows;
        size_t n, n_ok;                 /* rows; the leading ones that passed */
        uint64_t first;                 /* seq of rows[0] */
        uint8_t hashes[PAGE_ROWS][PHI_AUDIT_HASH_SIZE];
        struct phi_audit_verify_result bad;     /* why rows[n_ok] did not pass */
};

struct helper {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct run *x;
        struct page *todo;              /* handed over, not done yet */
        bool quit;
        struct phi_audit_parsed parsed;
};

static void page_check(struct helper *h, struct page *pg) {
        struct run wx = *h->x;

        wx.res = &pg->bad;
        for (pg->n_ok = 0; pg->n_ok < pg->n; pg->n_ok++)
                if (check_row(&wx, &pg->rows[pg->n_ok], pg->first + pg->n_ok, &h->parsed, pg->hashes[pg->n_ok]) < 0)
                        break;
}

static void *helper_thread(void *userdata) {
        struct helper *h = userdata;

        pthread_mutex_lock(&h->lock);
        for (;;) {
                while (!h->todo && !h->quit)
                        pthread_cond_wait(&h->cond, &h->lock);
                if (!h->todo)
                        break;
                pthread_mutex_unlock(&h->lock);
                page_check(h, h->todo);
                pthread_mutex_lock(&h->lock);
                h->todo = NULL;
                pthread_cond_broadcast(&h->cond);
        }
        pthread_mutex_unlock(&h->lock);
        return NULL;
}

static void helper_give(struct helper *h, struct page *pg) {
        pthread_mutex_lock(&h->lock);
        h->todo = pg;
        pthread_cond_broadcast(&h->cond);
        pthread_mutex_unlock(&h->lock);
}

static void helper_wait(struct helper *h) {
        pthread_mutex_lock(&h->lock);
        while (h->todo)
                pthread_cond_wait(&h->cond, &h->lock);
        pthread_mutex_unlock(&h->lock);
}

static int page_read(struct run *x, struct page *pg, uint64_t from, uint64_t end) {
        int r;

        phi_audit_rows_free(pg->rows, pg->n);
        pg->rows = NULL;
        pg->n = pg->n_ok = 0;
        pg->first = from;
        if (from >= end)
                return 0;
        r = phi_store_audit_rows(x->in->store, NULL, from, (size_t) (end - from < PAGE_ROWS ? end - from : PAGE_ROWS),
                                 &pg->rows, &pg->n);
        if (r < 0) {
                pg->rows = NULL;
                pg->n = 0;
                return fail(x, PHI_AUDIT_VERIFY_ERROR, false, 0, "cannot read the records: %s", phi_errno_text(r));
        }
        return 0;
}

/* Appends a checked page to the tree; its failure, if it had one, once the
 * rows before it are in. */
static int page_apply(struct run *x, const struct page *pg, struct phi_audit_tree *t, size_t *ci) {
        int r = 0;

        for (size_t i = 0; i < pg->n_ok && r == 0; i++) {
                if ((r = phi_audit_tree_append_hash(t, pg->hashes[i])) < 0)
                        return fail(x, PHI_AUDIT_VERIFY_ERROR, false, 0, "the tree is full");
                x->res->records = t->size;
                if (*ci < x->n_cps && x->cps[*ci].size == t->size)
                        r = check_cps_at(x, ci, t);
        }
        if (r == 0 && pg->n_ok < pg->n) {
                x->res->outcome = pg->bad.outcome;
                x->res->has_bad_seq = pg->bad.has_bad_seq;
                x->res->bad_seq = pg->bad.bad_seq;
                memcpy(x->res->what, pg->bad.what, sizeof(x->res->what));
                r = -EBADMSG;
        }
        return r;
}

static int records_check(struct run *x, uint64_t end, struct phi_audit_tree *t, size_t *ci, uint64_t *ret_seq) {
        _cleanup_free_ struct page *pages = calloc(2, sizeof(*pages));
        _cleanup_free_ struct helper *h = calloc(1, sizeof(*h));
        struct page *cur, *next;
        uint64_t seq = 0;
        int r;

        if (!pages || !h)
                return fail(x, PHI_AUDIT_VERIFY_ERROR, false, 0, "out of memory");
        h->x = x;
        pthread_mutex_init(&h->lock, NULL);
        pthread_cond_init(&h->cond, NULL);
        if (pthread_create(&h->thread, NULL, helper_thread, h) != 0) {
                pthread_cond_destroy(&h->cond);
                pthread_mutex_destroy(&h->lock);
                return fail(x, PHI_AUDIT_VERIFY_ERROR, false, 0, "cannot start a thread");
        }
        cur = &pages[0];
        next = &pages[1];
        r = page_read(x, cur, 0, end);
        if (r == 0)
                helper_give(h, cur);
        while (r == 0 && cur->n > 0) {
                if (x->in->cancel && *x->in->cancel) {
                        r = fail(x, PHI_AUDIT_VERIFY_ERROR, false, 0, "stopped: the daemon is shutting down");
                        break;
                }
                /* The next page is read while the helper checks this one. */
                r = page_read(x, next, cur->first + cur->n, end);
                helper_wait(h);
                if (r == 0)
                        r = page_apply(x, cur, t, ci);
                if (r == 0)
                        seq = cur->first + cur->n;
                if (r == 0 && next->n > 0)
                        helper_give(h, next);
                struct page *tmp = cur;
                cur = next;
                next = tmp;
        }
        helper_wait(h);
        pthread_mutex_lock(&h->lock);
        h->quit = true;
        pthread_cond_broadcast(&h->cond);
        pthread_mutex_unlock(&h->lock);
        (void) pthread_join(h->thread, NULL);
        pthread_cond_destroy(&h->cond);
        pthread_mutex_destroy(&h->lock);
        for (size_t i = 0; i < 2; i++)
                phi_audit_rows_free(pages[i].rows, pages[i].n);
        *ret_seq = seq;
        return r;
}

static int verify(struct run *x) {
        struct phi_audit_tree saved, t;
        uint8_t root[PHI_AUDIT_HASH_SIZE], saved_root[PHI_AUDIT_HASH_SIZE];
        uint64_t seq = 0;
        size_t ci = 0;
        int r;

        /* In this order: a checkpoint is journaled after its round commits,
         * and stored in the round that saves its tree, so everything read
         * before the saved tree is within it, unless records were lost. */
        if (x->in->journal && (r = load_journal(x)) < 0)
                return r;
        if ((r = load_stored(x)) < 0 || (r = saved_tree(x, &saved)) < 0)
                return r;
        cps_merge(x);
        phi_audit_tree_init(&t);
        if ((r = check_cps_at(x, &ci, &t)) < 0)
                return r;
        /* Records appended after the saved tree was read are the next
         * verification's. */
        if ((r = records_check(x, saved.size, &t, &ci, &seq)) < 0)
                return r;
        if (seq < saved.size)
                return fail(x, PHI_AUDIT_VERIFY_TRUNCATED, true, seq,
                            "the saved tree holds %" PRIu64 " records but the store only %" PRIu64
                            ": records %" PRIu64 " to %" PRIu64 " were deleted from the end",
                            saved.size, seq, seq, saved.size - 1);
        phi_audit_tree_root(&t, root);
        phi_audit_tree_root(&saved, saved_root);
        if (sodium_memcmp(root, saved_root, sizeof(root)) != 0)
                return fail(x, PHI_AUDIT_VERIFY_ROOT, true, x->good,
                            "the records do not make the saved tree's root: one of records %" PRIu64 " to %" PRIu64
                            " was changed, or records were removed or reordered with their hashes",
                            x->good, saved.size ? saved.size - 1 : 0);
        /* What is left lies beyond the store's records. */
        for (size_t i = ci; i < x->n_cps; i++)
                if (x->cps[i].src & SRC_STORE)
                        return fail(x, PHI_AUDIT_VERIFY_TRUNCATED, true, t.size,
                                    "a checkpoint of %" PRIu64 " records is stored but the store holds only %" PRIu64
                                    ": records %" PRIu64 " to %" PRIu64 " were deleted from the end",
                                    x->cps[i].size, t.size, t.size, x->cps[i].size - 1);
        if (ci < x->n_cps)
                return fail(x, PHI_AUDIT_VERIFY_BEHIND, true, t.size,
                            "the store is older than checkpoint %" PRIu64 " in the journal (restored from a backup?): "
                            "it holds %" PRIu64 " records; records %" PRIu64 " to %" PRIu64
                            " were journaled as signed and are not in it (removed from the end, or the store "
                            "replaced by an older copy)",
                            x->cps[x->n_cps - 1].size, t.size, t.size, x->cps[x->n_cps - 1].size - 1);
        memcpy(x->res->root, root, sizeof(root));
        return 0;
}

int phi_audit_verify_run(const struct phi_audit_verify_input *in, struct phi_audit_verify_result *ret) {
        struct run x = { .in = in, .res = ret };
        const char *err = NULL;

        *ret = (struct phi_audit_verify_result) { .outcome = PHI_AUDIT_VERIFY_OK };
        if (!in->store || !in->vkey)
                return -EINVAL;
        if (phi_audit_verifier_parse(in->vkey, strlen(in->vkey), &x.keys[0], &err) < 0) {
                (void) fail(&x, PHI_AUDIT_VERIFY_ERROR, false, 0, "the log's verifier key is not one: %s", err);
                return 0;
        }
        x.n_keys = 1;
        if (in->n_trusted >= PHI_AUDIT_KEYS_MAX) {
                (void) fail(&x, PHI_AUDIT_VERIFY_ERROR, false, 0, "more than %d trusted keys", PHI_AUDIT_KEYS_MAX - 1);
                return 0;
        }
        for (size_t i = 0; i < in->n_trusted; i++)
                if (phi_audit_verifier_parse(in->trusted[i], strlen(in->trusted[i]), &x.keys[x.n_keys++], &err) < 0) {
                        (void) fail(&x, PHI_AUDIT_VERIFY_ERROR, false, 0, "trusted key %zu is not a verifier key: %s",
                                    i + 1, err);
                        return 0;
                }
        snprintf(x.origin, sizeof(x.origin), "%s", in->origin && *in->origin ? in->origin : x.keys[0].name);
        snprintf(ret->origin, sizeof(ret->origin), "%s", x.origin);
        (void) verify(&x);
        free(x.cps);
        return 0;
}

int phi_audit_verify_reply(const struct phi_audit_verify_result *res, phi_msg **ret) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_OK);
        char root[64];
        bool ok = res->outcome == PHI_AUDIT_VERIFY_OK;
        int r;

        if (!m)
                return -ENOMEM;
        sodium_bin2base64(root, sizeof(root), res->root, sizeof(res->root), sodium_base64_VARIANT_ORIGINAL);
        if ((r = phi_msg_put_flag(m, "verified", ok)) < 0 ||
            (r = phi_msg_put_pair(m, "outcome", phi_audit_verify_outcome_name(res->outcome))) < 0 ||
            (!ok && res->has_bad_seq && (r = phi_msg_put_number(m, "bad_seq", res->bad_seq)) < 0) ||
            (!ok && (r = phi_msg_put_pair(m, "error", res->what)) < 0) ||
            (r = phi_msg_put_number(m, "records", res->records)) < 0 ||
            (r = phi_msg_put_number(m, "checkpoints", res->checkpoints)) < 0 ||
            (r = phi_msg_put_number(m, "journal_checkpoints", res->journal_checkpoints)) < 0 ||
            (r = phi_msg_put_number(m, "journal_ignored", res->journal_ignored)) < 0 ||
            (r = phi_msg_put_number(m, "journal_newest", res->journal_newest)) < 0 ||
            (ok && (r = phi_msg_put_pair(m, "root", root)) < 0) ||
            (r = phi_msg_put_pair(m, "origin", res->origin)) < 0)
                return r;
        *ret = PHI_TAKE_PTR(m);
        return 0;
}

/* ------------------------------------------------------- the live checks */

struct phi_audit_checks {
        pthread_mutex_t lock;
        int event_fd;
        bool running, joinable;
        pthread_t thread;
        volatile bool cancel;
        uint64_t counter;
        /* the one verification: what it needs, and its reply once done */
        uint64_t ticket;
        struct phi_config *config;  /* whose store it opens */
        char vkey[PHI_AUDIT_VKEY_MAX];
        char origin[PHI_AUDIT_NAME_MAX + 1];
        char *trusted[PHI_AUDIT_KEYS_MAX];
        size_t n_trusted;
        char actor[64];
        phi_msg *reply;
};

static void checks_trusted_clear(phi_audit_checks *c) {
        for (size_t i = 0; i < c->n_trusted; i++)
                free(c->trusted[i]);
        c->n_trusted = 0;
}

int phi_audit_checks_new(phi_audit_checks **ret) {
        phi_audit_checks *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->lock, NULL);
        c->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->event_fd < 0) {
                int r = phi_negative_errno();
                pthread_mutex_destroy(&c->lock);
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

void phi_audit_checks_free(phi_audit_checks *c) {
        if (!c)
                return;
        c->cancel = true;
        if (c->joinable)
                (void) pthread_join(c->thread, NULL);
        phi_msg_free(c->reply);
        phi_config_unref(c->config);
        checks_trusted_clear(c);
        (void) phi_close_safe(c->event_fd);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

int phi_audit_checks_event_fd(const phi_audit_checks *c) {
        return c->event_fd;
}

void phi_audit_checks_event_ack(phi_audit_checks *c) {
        uint64_t v;

        (void) !read(c->event_fd, &v, sizeof(v));
}

bool phi_audit_checks_take(phi_audit_checks *c, uint64_t *ret_ticket, phi_msg **ret_reply) {
        bool got = false;

        pthread_mutex_lock(&c->lock);
        if (!c->running && c->ticket) {
                *ret_ticket = c->ticket;
                *ret_reply = PHI_TAKE_PTR(c->reply);
                c->ticket = 0;
                got = true;
        }
        pthread_mutex_unlock(&c->lock);
        return got;
}

static void *check_thread(void *userdata) {
        phi_audit_checks *c = userdata;
        struct phi_audit_verify_result res = { 0 };
        phi_store *store = NULL;
        phi_msg *reply = NULL;
        uint64_t one = 1;
        int64_t started = phi_now_ms();
        int r;

        r = phi_store_open_config(c->config, PHI_IDENTITIES_NONE, &store);
        if (r < 0) {
                res.outcome = PHI_AUDIT_VERIFY_ERROR;
                snprintf(res.what, sizeof(res.what), "cannot open the store: %s", phi_errno_text(r));
        } else {
                const struct phi_audit_verify_input in = {
                        .store = store, .vkey = c->vkey, .origin = c->origin,
                        .trusted = (const char *const *) c->trusted, .n_trusted = c->n_trusted,
                        .journal = true, .cancel = &c->cancel,
                };
                if (phi_audit_verify_run(&in, &res) < 0)
                        res.outcome = PHI_AUDIT_VERIFY_ERROR;
        }
        phi_store_free(store);
        if (res.outcome == PHI_AUDIT_VERIFY_OK)
                phi_log(LOG_INFO, "audit log verified for %s: %" PRIu64 " records, %" PRIu64 " stored and %" PRIu64
                                  " journal checkpoints, in %" PRId64 " ms",
                        c->actor, res.records, res.checkpoints, res.journal_checkpoints, phi_now_ms() - started);
        else
                phi_log(res.outcome == PHI_AUDIT_VERIFY_ERROR ? LOG_ERR : LOG_CRIT,
                        "audit log verification for %s: %s: %s", c->actor,
                        phi_audit_verify_outcome_name(res.outcome), res.what);
        if (phi_audit_verify_reply(&res, &reply) < 0)
                reply = NULL;   /* the server closes the connection: no answer is no verdict */
        pthread_mutex_lock(&c->lock);
        c->reply = reply;
        c->running = false;
        pthread_mutex_unlock(&c->lock);
        (void) !write(c->event_fd, &one, sizeof(one));
        return NULL;
}

int phi_handle_audit_verify(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                            phi_msg **ret_reply, uint64_t *ret_ticket) {
        phi_audit_checks *c = d->audit_checks;
        uint64_t size = 0, checkpoint = 0;
        bool busy;
        int r;

        (void) req;
        if (!c)
                return phi_msg_new_error(-EOPNOTSUPP, ret_reply, "this phiaccessd cannot verify its audit log");
        if (!d->verifier)
                return phi_msg_new_error(-EOPNOTSUPP, ret_reply,
                                         "no audit log: the daemon runs without its master key (see phictl status)");
        pthread_mutex_lock(&c->lock);
        busy = c->running || c->ticket;
        pthread_mutex_unlock(&c->lock);
        if (busy)
                return phi_msg_new_error(-EBUSY, ret_reply,
                                         "another audit verification is running; try again when it has finished");
        if (c->joinable) {
                (void) pthread_join(c->thread, NULL);   /* it has ended: running is false */
                c->joinable = false;
        }
        phi_config_unref(c->config);
        c->config = phi_config_ref(d->config);
        phi_verifier_audit_state(d->verifier, &size, &checkpoint, c->vkey, sizeof(c->vkey));
        checks_trusted_clear(c);
        if ((r = phi_verifier_audit_keys(d->verifier, c->origin, sizeof(c->origin), c->trusted, &c->n_trusted)) < 0)
                return r;
        snprintf(c->actor, sizeof(c->actor), "%s", caller->name);
        c->ticket = PHI_AUDIT_CHECK_TICKET_BIT | ++c->counter;
        c->running = true;
        r = -pthread_create(&c->thread, NULL, check_thread, c);
        if (r < 0) {
                c->running = false;
                c->ticket = 0;
                return phi_msg_new_error(r, ret_reply, "cannot start the verification: %s", phi_errno_text(r));
        }
        c->joinable = true;
        phi_log(LOG_INFO, "audit log verification of %" PRIu64 " records started by %s", size, caller->name);
        *ret_reply = NULL;
        *ret_ticket = c->ticket;
        return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The audit log's writer; see audit_log.h. */

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "audit_log.h"
#include "config.h"
#include "journal.h"
#include "phi/fs.h"
#include "phi/secret.h"

struct phi_audit_log {
        phi_store *store;
        struct phi_audit_signer signer;
        char vkey[PHI_AUDIT_VKEY_MAX];
        char origin[PHI_AUDIT_NAME_MAX + 1];
        char key_name[PHI_AUDIT_NAME_MAX + 1];
        char *trusted[PHI_AUDIT_KEYS_MAX - 1];  /* the fleet's other verifier keys */
        size_t n_trusted;
        uint64_t adopted;                   /* rounds that found another writer's appends */
        uint64_t checkpoint_records, checkpoint_interval;

        struct phi_audit_tree tree, saved;  /* now, and as the store has it */
        uint64_t checkpoint_size;           /* the newest checkpoint's */
        uint64_t checkpoint_at;             /* when it was made (Unix seconds) */
        bool urgent;                        /* this round has a record that wants one */
};

/* Lowercase hex and a NUL: every record's leaf hash and every round's saved
 * tree (up to 2 KiB) go through here, so no printf per byte. */
static void hex_of(const uint8_t *p, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * n] = '\0';
}

static int hex_to(const char *hex, uint8_t *out, size_t cap, size_t *ret_n) {
        size_t len = strlen(hex), bin_len = 0;

        if (len % 2 || len / 2 > cap ||
            sodium_hex2bin(out, cap, hex, len, NULL, &bin_len, NULL) != 0 || bin_len != len / 2)
                return -EBADMSG;
        *ret_n = bin_len;
        return 0;
}

/* Writes text to path (new, mode), by a temp file linked into place. */
static int file_create(const char *path, const char *text, mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t done = 0, n = strlen(text);
        int r = 0;

        if (asprintf(&tmp, "%s.new-%u", path, (unsigned) getpid()) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return phi_negative_errno();
        if (fchmod(fd, mode) < 0)
                r = phi_negative_errno();
        while (r == 0 && done < n) {
                ssize_t w = write(fd, text + done, n - done);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        r = w < 0 ? phi_negative_errno() : -EIO;
                else
                        done += (size_t) w;
        }
        if (r == 0 && (fsync(fd) < 0 || link(tmp, path) < 0))
                r = phi_negative_errno();
        (void) unlink(tmp);
        if (r == 0)
                r = phi_fs_fsync_parent(path);
        return r;
}

/* The signing key: read (a file only root may read and write), or made at
 * the first start, with its public half written beside it for auditors. */
static int key_load(struct phi_audit_log *l, const char *path) {
        char skey[PHI_AUDIT_SKEY_MAX + 2] = "", vkey[PHI_AUDIT_VKEY_MAX];
        _cleanup_free_ char *pub = NULL;
        const char *reason = NULL, *err = NULL;
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;
        int r;

        if (asprintf(&pub, "%s%s", path, PHI_AUDIT_PUB_SUFFIX) < 0) {
                pub = NULL;
                return -ENOMEM;
        }
        fd = phi_config_open_trusted(path, true, &reason);
        if (fd == -ENOENT) {
                if ((r = phi_audit_keygen(l->key_name, skey, vkey)) < 0)
                        goto out;
                strcat(skey, "\n");
                if ((r = file_create(path, skey, 0600)) < 0) {
                        phi_log(LOG_ERR, "cannot make the audit signing key %s: %s", path, phi_errno_text(r));
                        goto out;
                }
                phi_log(LOG_NOTICE, "made the audit log's signing key %s; auditors verify with %s", path, pub);
                fd = phi_config_open_trusted(path, true, &reason);
        }
        if (fd < 0) {
                r = fd;
                phi_log(LOG_ERR, "cannot use the audit signing key %s: %s", path, reason ? reason : phi_errno_text(r));
                goto out;
        }
        n = read(fd, skey, sizeof(skey) - 1);
        if (n < 0) {
                r = phi_negative_errno();
                goto out;
        }
        skey[n] = '\0';
        skey[strcspn(skey, "\r\n")] = '\0';
        if ((r = phi_audit_signer_parse(skey, strlen(skey), &l->signer, &err)) < 0) {
                phi_log(LOG_ERR, "the audit signing key %s is not one: %s", path, err);
                goto out;
        }
        if (!l->origin[0])
                /* One host's log is named after its key (a key made before a
                 * rename keeps its name, so that old checkpoints verify). */
                snprintf(l->origin, sizeof(l->origin), "%s", l->signer.name);
        if ((r = phi_audit_key_from_seed(l->signer.name, l->signer.sk, skey, l->vkey)) < 0)
                goto out;
        /* The public key, for auditors: rewritten when missing. */
        if (access(pub, F_OK) != 0) {
                char line[PHI_AUDIT_VKEY_MAX + 1];
                snprintf(line, sizeof(line), "%s\n", l->vkey);
                if ((r = file_create(pub, line, 0644)) < 0 && r != -EEXIST)
                        phi_log(LOG_WARNING, "cannot write the audit verifier key %s: %s", pub, phi_errno_text(r));
        }
        r = 0;
out:
        phi_secret_wipe(skey, sizeof(skey));
        return r;
}

/* The stored tree into *t (empty when never saved); lock: in a round that
 * may append (phi_store_audit_tree_lock). */
static int tree_read(struct phi_audit_log *l, bool lock, struct phi_audit_tree *t) {
        char hex[2 * PHI_AUDIT_TREE_SAVED_MAX + 1];
        uint8_t buf[PHI_AUDIT_TREE_SAVED_MAX];
        size_t n = 0;
        int r;

        phi_audit_tree_init(t);
        r = lock ? phi_store_audit_tree_lock(l->store, hex, sizeof(hex))
                 : phi_store_audit_tree_get(l->store, hex, sizeof(hex));
        if (r == -ENOENT)
                return 0;
        if (r == 0 && ((r = hex_to(hex, buf, sizeof(buf), &n)) < 0 || (r = phi_audit_tree_restore(t, buf, n)) < 0))
                phi_log(LOG_CRIT, "the audit log's saved tree is damaged: %s", phi_errno_text(r));
        return r;
}

/* The newest checkpoint, whoever made it: when the next one is due. */
static int checkpoint_read(struct phi_audit_log *l) {
        uint64_t size = 0, created = 0;
        int r = phi_store_audit_checkpoint_last(l->store, &size, &created);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        l->checkpoint_size = size;
        l->checkpoint_at = created;
        return 0;
}

static int tree_load(struct phi_audit_log *l) {
        int r;

        if ((r = tree_read(l, false, &l->tree)) < 0)
                return r;
        l->saved = l->tree;
        return checkpoint_read(l);
}

int phi_audit_log_open(phi_store *store, const struct phi_audit_log_config *c, phi_audit_log **ret) {
        phi_audit_log *l = calloc(1, sizeof(*l));
        char why[512];
        int r;

        if (!l)
                return -ENOMEM;
        l->store = store;
        snprintf(l->origin, sizeof(l->origin), "%s", c->origin ? c->origin : "");
        snprintf(l->key_name, sizeof(l->key_name), "%s", c->key_name && *c->key_name ? c->key_name : l->origin);
        l->checkpoint_records = c->checkpoint_records ? c->checkpoint_records : 1000;
        l->checkpoint_interval = c->checkpoint_interval ? c->checkpoint_interval : 60;
        if (l->origin[0] && !phi_audit_key_name_valid(l->origin, strlen(l->origin))) {
                phi_log(LOG_ERR, "'%s' cannot name the audit log (no blanks, no '+')", l->origin);
                r = -EINVAL;
                goto fail;
        }
        if (!phi_audit_key_name_valid(l->key_name, strlen(l->key_name))) {
                phi_log(LOG_ERR, "'%s' cannot name an audit key (no blanks, no '+')", l->key_name);
                r = -EINVAL;
                goto fail;
        }
        if (c->trusted_keys && *c->trusted_keys &&
            (r = phi_audit_keys_file_read(c->trusted_keys, l->trusted, &l->n_trusted, why, sizeof(why))) < 0) {
                phi_log(LOG_ERR, "[audit] trusted_keys: %s", why);
                goto fail;
        }
        if ((r = key_load(l, c->key_path)) < 0 || (r = tree_load(l)) < 0)
                goto fail;
        *ret = l;
        return 0;
fail:
        phi_audit_log_free(l);
        return r;
}

void phi_audit_log_free(phi_audit_log *l) {
        if (!l)
                return;
        phi_audit_signer_wipe(&l->signer);
        for (size_t i = 0; i < l->n_trusted; i++)
                free(l->trusted[i]);
        sodium_memzero(l, sizeof(*l));
        free(l);
}

int phi_audit_log_begin(phi_audit_log *l) {
        struct phi_audit_tree stored;
        int r;

        l->urgent = false;
        /* One small read a round: the fast path of a single writer finds the
         * tree where it left it. */
        if ((r = tree_read(l, true, &stored)) < 0)
                return r;
        if (stored.size != l->tree.size) {
                /* Another daemon appended: the store's tree is the base, and
                 * its newest checkpoint says when one is due. Fewer records
                 * than this daemon has appended means the store was set back
                 * under it (its journaled checkpoints now say behind-journal):
                 * said, and the store's tree is still the one appended to. */
                if (stored.size < l->tree.size)
                        phi_log(LOG_CRIT, "the stored audit tree holds %llu records, fewer than the %llu this daemon "
                                          "has seen: the store was set back; going on from the store's",
                                (unsigned long long) stored.size, (unsigned long long) l->tree.size);
                l->adopted++;
                if ((r = checkpoint_read(l)) < 0)
                        return r;
        }
        /* The store's, always: it is what the round appends to. */
        l->tree = stored;
        l->saved = l->tree;
        return 0;
}

void phi_audit_log_rollback(phi_audit_log *l) {
        l->tree = l->saved;
        l->urgent = false;
}

static void copy_field(char *dst, size_t cap, const char *src) {
        snprintf(dst, cap, "%s", src ? src : "");
}

int phi_audit_log_append(phi_audit_log *l, struct phi_audit_record *rec, bool urgent) {
        char leaf[PHI_AUDIT_RECORD_MAX + 1];
        uint8_t hash[PHI_AUDIT_HASH_SIZE];
        struct phi_audit_row row = { 0 };
        struct phi_audit_clip clip;
        const char *err = NULL;
        size_t n = 0;
        int r;

        /* A text over its bound (a long sudo command) must not fail the
         * round, and with it the logins it serves. */
        phi_audit_record_clip(rec, &clip);
        rec->seq = l->tree.size;
        if ((r = phi_audit_record_encode(rec, leaf, sizeof(leaf) - 1, &n, &err)) < 0) {
                phi_log(LOG_ERR, "audit record for %s not encoded: %s", rec->event, err ? err : phi_errno_text(r));
                return r;
        }
        leaf[n] = '\0';
        phi_audit_leaf_hash(leaf, n, hash);
        row.seq = rec->seq;
        row.time_us = rec->time_us;
        copy_field(row.event, sizeof(row.event), rec->event);
        copy_field(row.user, sizeof(row.user), rec->user);
        copy_field(row.actor, sizeof(row.actor), rec->actor);
        copy_field(row.role, sizeof(row.role), rec->role);
        copy_field(row.request_id, sizeof(row.request_id), rec->request_id);
        copy_field(row.host, sizeof(row.host), rec->host);
        row.leaf = leaf;
        hex_of(hash, sizeof(hash), row.leaf_hash);
        if ((r = phi_store_audit_append(l->store, &row)) < 0 || (r = phi_audit_tree_append_hash(&l->tree, hash)) < 0)
                return r;
        l->urgent |= urgent;
        return 0;
}

int phi_audit_log_finish(phi_audit_log *l, uint64_t now, char **ret_note) {
        uint8_t buf[PHI_AUDIT_TREE_SAVED_MAX], root[PHI_AUDIT_HASH_SIZE];
        char hex[2 * PHI_AUDIT_TREE_SAVED_MAX + 1], *note = NULL;
        uint64_t fresh = l->tree.size - l->checkpoint_size;
        size_t n = 0;
        int r;

        *ret_note = NULL;
        if (l->tree.size != l->saved.size) {
                if ((r = phi_audit_tree_save(&l->tree, buf, sizeof(buf), &n)) < 0)
                        return r;
                hex_of(buf, n, hex);
                if ((r = phi_store_audit_tree_put(l->store, hex)) < 0)
                        return r;
        }
        if (fresh == 0 ||
            !(l->urgent || fresh >= l->checkpoint_records || now >= l->checkpoint_at + l->checkpoint_interval))
                return 0;
        note = malloc(PHI_AUDIT_NOTE_MAX);
        if (!note)
                return -ENOMEM;
        phi_audit_tree_root(&l->tree, root);
        if ((r = phi_audit_checkpoint_sign(&l->signer, l->origin, l->tree.size, root, note, PHI_AUDIT_NOTE_MAX, &n)) <
                    0 ||
            (r = phi_store_audit_checkpoint_put(l->store, l->tree.size, note, now)) < 0) {
                free(note);
                return r;
        }
        /* Taken for good only once the round commits; a rollback restores
         * the tree, and the next round signs again. */
        *ret_note = note;
        return 0;
}

void phi_audit_log_checkpoint_committed(phi_audit_log *l, uint64_t size, uint64_t now) {
        l->checkpoint_size = size;
        l->checkpoint_at = now;
        l->urgent = false;
}

uint64_t phi_audit_log_size(const phi_audit_log *l) {
        return l->tree.size;
}

uint64_t phi_audit_log_checkpoint_size(const phi_audit_log *l) {
        return l->checkpoint_size;
}

const char *phi_audit_log_vkey(const phi_audit_log *l) {
        return l->vkey;
}

const char *phi_audit_log_origin(const phi_audit_log *l) {
        return l->origin;
}

size_t phi_audit_log_trusted(const phi_audit_log *l, const char *const **ret) {
        *ret = (const char *const *) l->trusted;
        return l->n_trusted;
}

uint64_t phi_audit_log_adopted(const phi_audit_log *l) {
        return l->adopted;
}

int phi_audit_keys_file_read(const char *path, char **vkeys, size_t *n, char *why, size_t why_len) {
        _cleanup_free_ char *data = malloc(PHI_AUDIT_KEYS_TEXT_MAX + 1);
        _cleanup_free_ struct phi_audit_verifier *keys = calloc(PHI_AUDIT_KEYS_MAX, sizeof(*keys));
        _cleanup_close_ int fd = -EBADF;
        size_t len = 0, line = 0, n_keys = 0;
        const char *err = NULL, *reason = NULL;
        int r;

        if (!data || !keys)
                return -ENOMEM;
        /* Whoever may write it may add a key whose checkpoints then verify:
         * root's file, as the configuration is. */
        fd = phi_config_open_trusted(path, false, &reason);
        if (fd < 0) {
                snprintf(why, why_len, "%s: %s", path, reason ? reason : phi_errno_text(fd));
                return fd;
        }
        for (;;) {
                ssize_t k = read(fd, data + len, PHI_AUDIT_KEYS_TEXT_MAX + 1 - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = phi_negative_errno();
                        snprintf(why, why_len, "%s: %s", path, phi_errno_text(r));
                        return r;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len > PHI_AUDIT_KEYS_TEXT_MAX) {
                        snprintf(why, why_len, "%s: larger than %d bytes", path, PHI_AUDIT_KEYS_TEXT_MAX);
                        return -E2BIG;
                }
        }
        /* Room for the daemon's own key beside them in a verification. */
        r = phi_audit_verifiers_parse(data, len, keys, *n < PHI_AUDIT_KEYS_MAX - 1 ? PHI_AUDIT_KEYS_MAX - 1 - *n : 0,
                                      &n_keys, &line, &err);
        if (r < 0) {
                if (line)
                        snprintf(why, why_len, "%s:%zu: %s%s", path, line,
                                 r == -EINVAL ? "not a verifier key (NAME+KEYID+BASE64): " : "", err);
                else
                        snprintf(why, why_len, "%s: %s", path, err);
                return r;
        }
        /* Kept as text, the lines that parsed (a key has one spelling): the
         * live verification parses its copies again on its own thread. */
        for (const char *p = data, *end = data + len; p < end && *n < PHI_AUDIT_KEYS_MAX - 1;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t l = nl ? (size_t) (nl - p) : (size_t) (end - p);
                const char *q = p;
                p += l + (nl ? 1 : 0);
                while (l > 0 && (q[l - 1] == '\r' || q[l - 1] == ' ' || q[l - 1] == '\t'))
                        l--;
                while (l > 0 && (*q == ' ' || *q == '\t'))
                        q++, l--;
                if (l == 0 || *q == '#')
                        continue;
                if (!(vkeys[*n] = strndup(q, l)))
                        return -ENOMEM;
                (*n)++;
        }
        return 0;
}

void phi_audit_log_root(const phi_audit_log *l, uint8_t ret[PHI_AUDIT_HASH_SIZE]) {
        phi_audit_tree_root(&l->tree, ret);
}

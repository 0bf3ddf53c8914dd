/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The master key and the seal of TOTP seeds; see seal.h. libsodium does the
 * cryptography; this file only decides which key file to trust. */

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>

#include "phi/fs.h"
#include "phi/secret.h"
#include "seal.h"

_Static_assert(PHI_SEAL_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(PHI_SEAL_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce size");
_Static_assert(PHI_SEAL_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag size");

struct phi_seal_key {
        uint8_t bytes[PHI_SEAL_KEY_BYTES];
};

int phi_seal_init(void) {
        /* 1 means "already initialised", which is fine. */
        return sodium_init() < 0 ? -EIO : 0;
}

void phi_seal_key_free(phi_seal_key *k) {
        /* sodium_free() wipes, unlocks and unmaps, whatever the protection. */
        if (k)
                sodium_free(k);
}

static int key_new(phi_seal_key **ret) {
        phi_seal_key *k = sodium_malloc(sizeof(*k));

        if (!k)
                return -ENOMEM;
        *ret = k;
        return 0;
}

int phi_seal_key_from_bytes(const uint8_t *bytes, size_t n, phi_seal_key **ret) {
        phi_seal_key *k = NULL;
        int r;

        if (n != PHI_SEAL_KEY_BYTES)
                return -EBADMSG;
        if ((r = key_new(&k)) < 0)
                return r;
        memcpy(k->bytes, bytes, n);
        (void) sodium_mprotect_readonly(k);
        *ret = k;
        return 0;
}

/* Reads exactly one key from fd into protected memory; a file of any other
 * size is refused (a truncated write must never yield a shorter key). */
static int key_read_fd(int fd, phi_seal_key **ret) {
        phi_seal_key *k = NULL;
        uint8_t extra;
        size_t got = 0;
        ssize_t n;
        int r;

        if ((r = key_new(&k)) < 0)
                return r;
        while (got < PHI_SEAL_KEY_BYTES) {
                n = read(fd, k->bytes + got, PHI_SEAL_KEY_BYTES - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = phi_negative_errno();
                        goto out;
                }
                if (n == 0) {
                        r = -EBADMSG;
                        goto out;
                }
                got += (size_t) n;
        }
        do
                n = read(fd, &extra, 1);
        while (n < 0 && errno == EINTR);
        if (n != 0) {
                r = n < 0 ? phi_negative_errno() : -EBADMSG;
                goto out;
        }
        (void) sodium_mprotect_readonly(k);
        *ret = PHI_TAKE_PTR(k);
        r = 0;
out:
        phi_seal_key_free(k);
        return r;
}

/* The trust rule, applied to the descriptor that is read so the file cannot be
 * swapped between check and use: a regular file, owned by owner (root; for a
 * credential also the daemon's own user), nothing for group or others. */
static int key_fd_trusted(int fd, bool allow_self, const char **ret_reason) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return phi_negative_errno();
        if (!S_ISREG(st.st_mode)) {
                *ret_reason = "is not a regular file";
                return -EPERM;
        }
        if (st.st_uid != 0 && !(allow_self && st.st_uid == geteuid())) {
                *ret_reason = "is not owned by root";
                return -EPERM;
        }
        if (st.st_mode & (S_IRWXG | S_IRWXO)) {
                *ret_reason = "is accessible by group or others (must be mode 0600)";
                return -EPERM;
        }
        if (st.st_size != PHI_SEAL_KEY_BYTES) {
                *ret_reason = "does not hold exactly 32 bytes";
                return -EBADMSG;
        }
        return 0;
}

static int key_open(int dirfd, const char *path, int *ret_fd, const char **ret_reason) {
        int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);

        if (fd < 0) {
                if (errno == ELOOP) {
                        *ret_reason = "is a symbolic link";
                        return -EPERM;
                }
                return phi_negative_errno();
        }
        *ret_fd = fd;
        return 0;
}

/* Writes a fresh key next to path and links it into place: link() fails with
 * EEXIST instead of replacing a key someone else just made, and a crash never
 * leaves a half-written key under the real name. */
static int key_create(const char *path) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        uint8_t key[PHI_SEAL_KEY_BYTES];
        size_t done = 0;
        int r;

        if (asprintf(&tmp, "%s.new-%u", path, (unsigned) getpid()) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return phi_negative_errno();
        randombytes_buf(key, sizeof(key));
        if (fchmod(fd, 0600) < 0) {
                r = phi_negative_errno();
                goto fail;
        }
        while (done < sizeof(key)) {
                ssize_t n = write(fd, key + done, sizeof(key) - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? phi_negative_errno() : -EIO;
                        goto fail;
                }
                done += (size_t) n;
        }
        if (fsync(fd) < 0 || link(tmp, path) < 0) {
                r = phi_negative_errno();
                goto fail;
        }
        (void) unlink(tmp);
        /* The key's name must outlive a power loss as surely as the tokens
         * sealed under it, or the next start would find no key and (allowed to
         * create one) orphan every token. */
        r = phi_fs_fsync_parent(path);
        goto out;
fail:
        (void) unlink(tmp);
out:
        sodium_memzero(key, sizeof(key));
        return r;
}

int phi_seal_key_load(const struct phi_seal_options *o, phi_seal_key **ret,
                      const char **ret_source, const char **ret_reason) {
        const char *creds = o->credentials_dir ? o->credentials_dir : secure_getenv("CREDENTIALS_DIRECTORY");
        const char *path = o->key_path ? o->key_path : PHI_SEAL_KEY_PATH;
        const char *reason = NULL, *source = NULL;
        _cleanup_close_ int dirfd = -1, fd = -1;
        bool allow_self = false;
        int r = -ENOENT;

        if (creds && *creds) {
                dirfd = open(creds, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dirfd >= 0)
                        r = key_open(dirfd, PHI_SEAL_CREDENTIAL, &fd, &reason);
                if (r == 0) {
                        source = "credential " PHI_SEAL_CREDENTIAL;
                        /* systemd hands credentials to the service's own user. */
                        allow_self = true;
                } else if (r != -ENOENT)
                        goto out;
        }
        if (fd < 0) {
                r = key_open(AT_FDCWD, path, &fd, &reason);
                if (r == -ENOENT && o->create) {
                        r = key_create(path);
                        /* Lost a race with another creator: use theirs. */
                        if (r == 0 || r == -EEXIST)
                                r = key_open(AT_FDCWD, path, &fd, &reason);
                }
                if (r < 0)
                        goto out;
                source = path;
        }
        if ((r = key_fd_trusted(fd, allow_self, &reason)) < 0 || (r = key_read_fd(fd, ret)) < 0)
                goto out;
        r = 0;
out:
        if (ret_source)
                *ret_source = source ? source : path;
        if (ret_reason)
                *ret_reason = reason;
        return r;
}

void phi_seal_seed_new(uint8_t seed[static PHI_SEAL_SEED_BYTES]) {
        randombytes_buf(seed, PHI_SEAL_SEED_BYTES);
}

/* The additional data: the user name, a NUL, the identity (store.h). A name
 * holds no NUL, so it cannot be mistaken for a name alone (the legacy form,
 * which always has no NUL), nor "a" + "b\0c" for "a\0b" + "c". */
static int ad_build(const char *user, const char *identity, uint8_t *buf, size_t size, size_t *ret_len) {
        size_t nu = strlen(user), ni = identity ? strlen(identity) : 0;

        if (nu == 0 || (identity && ni == 0) || nu + 1 + ni > size)
                return -EINVAL;
        memcpy(buf, user, nu);
        if (identity) {
                buf[nu] = 0;
                memcpy(buf + nu + 1, identity, ni);
                *ret_len = nu + 1 + ni;
        } else
                *ret_len = nu;
        return 0;
}

int phi_seal(const phi_seal_key *k, const char *user, const char *identity, const uint8_t *plain, size_t n,
             uint8_t nonce[static PHI_SEAL_NONCE_BYTES], uint8_t *ret_sealed) {
        uint8_t ad[PHI_SEAL_AD_MAX];
        size_t ad_len;

        if (ad_build(user, identity, ad, sizeof(ad), &ad_len) < 0 || n == 0 || n > PHI_SEAL_MAX_PLAIN)
                return -EINVAL;
        randombytes_buf(nonce, PHI_SEAL_NONCE_BYTES);
        if (crypto_aead_xchacha20poly1305_ietf_encrypt(ret_sealed, NULL, plain, n, ad, ad_len, NULL, nonce,
                                                       k->bytes) != 0)
                return -EIO;
        return 0;
}

static int unseal(const phi_seal_key *k, const char *user, const char *identity,
                  const uint8_t nonce[static PHI_SEAL_NONCE_BYTES], const uint8_t *sealed, size_t sealed_len,
                  uint8_t *ret_plain) {
        uint8_t ad[PHI_SEAL_AD_MAX];
        size_t ad_len, n;

        if (ad_build(user, identity, ad, sizeof(ad), &ad_len) < 0 || sealed_len <= PHI_SEAL_TAG_BYTES ||
            sealed_len > PHI_SEAL_MAX_PLAIN + PHI_SEAL_TAG_BYTES)
                return -EINVAL;
        n = sealed_len - PHI_SEAL_TAG_BYTES;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(ret_plain, NULL, NULL, sealed, sealed_len, ad, ad_len, nonce,
                                                       k->bytes) != 0) {
                sodium_memzero(ret_plain, n);
                return -EBADMSG;
        }
        return 0;
}

int phi_unseal(const phi_seal_key *k, const char *user, const char *identity,
               const uint8_t nonce[static PHI_SEAL_NONCE_BYTES], const uint8_t *sealed, size_t sealed_len,
               uint8_t *ret_plain) {
        return unseal(k, user, identity, nonce, sealed, sealed_len, ret_plain);
}

int phi_unseal_legacy(const phi_seal_key *k, const char *user, const uint8_t nonce[static PHI_SEAL_NONCE_BYTES],
                      const uint8_t *sealed, size_t sealed_len, uint8_t *ret_plain) {
        return unseal(k, user, NULL, nonce, sealed, sealed_len, ret_plain);
}

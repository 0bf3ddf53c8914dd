/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Sealing of TOTP seeds under the master key.
 *
 * The master key comes from the systemd credential "phi-master-key" (the unit
 * says LoadCredential=phi-master-key:/etc/phi/master.key, so the daemon's own
 * user never needs to read a root file) or, when there is no credential, from
 * a key file that must be a regular root-owned file with mode 0600. It lives
 * in sodium_malloc() memory: guard pages, mlock()ed, read-only once loaded,
 * wiped when freed.
 *
 * A seed is sealed with XChaCha20-Poly1305 (a random 192-bit nonce per seal,
 * so nonces never need a counter) and as additional data the user name and
 * the user's identity (the directory entry's stable key, or "local:UID" for a
 * local account; see store.h): a sealed seed copied into another user's row
 * does not open, nor does it open for a new person later given the same name. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phi/macro.h"

#define PHI_SEAL_KEY_BYTES 32u      /* crypto_aead_xchacha20poly1305_ietf_KEYBYTES */
#define PHI_SEAL_NONCE_BYTES 24u    /* crypto_aead_xchacha20poly1305_ietf_NPUBBYTES */
#define PHI_SEAL_TAG_BYTES 16u      /* crypto_aead_xchacha20poly1305_ietf_ABYTES */
#define PHI_SEAL_SEED_BYTES 20u     /* 160 bits: RFC 4226's recommended HOTP key length */
#define PHI_SEAL_MAX_PLAIN 64u      /* SHA-512 block-sized keys at most */
#define PHI_SEAL_CREDENTIAL "phi-master-key"
#define PHI_SEAL_KEY_PATH "/etc/phi/master.key"

typedef struct phi_seal_key phi_seal_key;

struct phi_seal_options {
        /* Directory of systemd credentials; NULL means $CREDENTIALS_DIRECTORY. */
        const char *credentials_dir;
        /* Key file used when no credential is present; NULL means PHI_SEAL_KEY_PATH. */
        const char *key_path;
        /* Create key_path (0600, fresh random key) when it does not exist. */
        bool create;
};

/* Initialises libsodium; call once before any other function here. */
int phi_seal_init(void) _phi_warn_unused_;

/*
 * Loads the master key. Errors:
 *   -ENOENT   neither credential nor key file, and creation not allowed
 *   -EPERM    the file exists but cannot be trusted (*ret_reason says why:
 *             not a regular file, a symlink, wrong owner, group/other bits)
 *   -EBADMSG  wrong size (a key is exactly PHI_SEAL_KEY_BYTES raw bytes)
 *   -ENOMEM, or the errno of a failed open/read/write.
 * *ret_source names where the key came from ("credential" or the path); it
 * points at static or option storage.
 */
int phi_seal_key_load(const struct phi_seal_options *o, phi_seal_key **ret,
                      const char **ret_source, const char **ret_reason) _phi_warn_unused_
        _phi_nonnull_args_(1, 2);

/* For tests and tools: a key from bytes (copied into protected memory). */
int phi_seal_key_from_bytes(const uint8_t *bytes, size_t n, phi_seal_key **ret) _phi_warn_unused_
        _phi_nonnull_;

/* Wipes and frees; accepts NULL. */
void phi_seal_key_free(phi_seal_key *k);
PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(phi_seal_key *, phi_seal_key_free);
#define _cleanup_seal_key_ _cleanup_(phi_seal_key_freep)

/* A fresh 160-bit seed from libsodium's CSPRNG. */
void phi_seal_seed_new(uint8_t seed[static PHI_SEAL_SEED_BYTES]) _phi_nonnull_;

/* Longest additional data: a name, a NUL, an identity. */
#define PHI_SEAL_AD_MAX 1024u

/* Seals plain[0..n) for user and identity: writes a random nonce and n +
 * PHI_SEAL_TAG_BYTES bytes of ciphertext. -EINVAL for an empty user or
 * identity, one too long, or n outside 1..PHI_SEAL_MAX_PLAIN. */
int phi_seal(const phi_seal_key *k, const char *user, const char *identity, const uint8_t *plain, size_t n,
             uint8_t nonce[static PHI_SEAL_NONCE_BYTES], uint8_t *ret_sealed) _phi_warn_unused_
        _phi_nonnull_;

/* Opens what phi_seal() made for the same user and identity: writes sealed_len -
 * PHI_SEAL_TAG_BYTES bytes to ret_plain. -EBADMSG when the tag does not verify
 * (other key, other user or identity, altered bytes), -EINVAL for impossible
 * lengths. ret_plain is wiped on failure. */
int phi_unseal(const phi_seal_key *k, const char *user, const char *identity,
               const uint8_t nonce[static PHI_SEAL_NONCE_BYTES], const uint8_t *sealed,
               size_t sealed_len, uint8_t *ret_plain) _phi_warn_unused_ _phi_nonnull_;

/* Opens a seed sealed before identities were part of the additional data (the
 * name alone): only for re-sealing the tokens of an upgraded store. */
int phi_unseal_legacy(const phi_seal_key *k, const char *user, const uint8_t nonce[static PHI_SEAL_NONCE_BYTES],
                      const uint8_t *sealed, size_t sealed_len, uint8_t *ret_plain) _phi_warn_unused_
        _phi_nonnull_;

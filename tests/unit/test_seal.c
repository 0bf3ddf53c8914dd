/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "seal.h"

struct fixture {
        char dir[64];
        char path[128];
        char creds[128];
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));

        if (!f || phi_seal_init() < 0)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "/tmp/phi-seal-XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        snprintf(f->path, sizeof(f->path), "%s/master.key", f->dir);
        snprintf(f->creds, sizeof(f->creds), "%s/creds", f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        char cmd[160];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
                return -1;
        free(f);
        return 0;
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        assert_true(fd >= 0);
        assert_int_equal(fchmod(fd, mode), 0);
        assert_int_equal(write(fd, data, n), (ssize_t) n);
        close(fd);
}

static phi_seal_key *key_of(uint8_t fill) {
        uint8_t bytes[PHI_SEAL_KEY_BYTES];
        phi_seal_key *k = NULL;

        memset(bytes, fill, sizeof(bytes));
        assert_int_equal(phi_seal_key_from_bytes(bytes, sizeof(bytes), &k), 0);
        return k;
}

static void test_round_trip(void **state) {
        _cleanup_seal_key_ phi_seal_key *k = key_of(1);
        uint8_t seed[PHI_SEAL_SEED_BYTES], seed2[PHI_SEAL_SEED_BYTES];
        uint8_t nonce[PHI_SEAL_NONCE_BYTES], nonce2[PHI_SEAL_NONCE_BYTES];
        uint8_t sealed[PHI_SEAL_SEED_BYTES + PHI_SEAL_TAG_BYTES], sealed2[sizeof(sealed)];
        uint8_t out[PHI_SEAL_SEED_BYTES];

        (void) state;
        phi_seal_seed_new(seed);
        phi_seal_seed_new(seed2);
        assert_memory_not_equal(seed, seed2, sizeof(seed));
        assert_int_equal(phi_seal(k, "alice", "uuid-alice", seed, sizeof(seed), nonce, sealed), 0);
        assert_memory_not_equal(sealed, seed, sizeof(seed));
        assert_int_equal(phi_unseal(k, "alice", "uuid-alice", nonce, sealed, sizeof(sealed), out), 0);
        assert_memory_equal(out, seed, sizeof(seed));
        /* A fresh nonce every time: sealing the same seed twice gives other bytes. */
        assert_int_equal(phi_seal(k, "alice", "uuid-alice", seed, sizeof(seed), nonce2, sealed2), 0);
        assert_memory_not_equal(nonce, nonce2, sizeof(nonce));
        assert_memory_not_equal(sealed, sealed2, sizeof(sealed));
}

static void test_bound_to_user_and_key(void **state) {
        _cleanup_seal_key_ phi_seal_key *k = key_of(1), *other = key_of(2);
        uint8_t seed[PHI_SEAL_SEED_BYTES], out[PHI_SEAL_SEED_BYTES], zero[PHI_SEAL_SEED_BYTES] = { 0 };
        uint8_t nonce[PHI_SEAL_NONCE_BYTES];
        uint8_t sealed[PHI_SEAL_SEED_BYTES + PHI_SEAL_TAG_BYTES];

        (void) state;
        phi_seal_seed_new(seed);
        assert_int_equal(phi_seal(k, "alice", "uuid-alice", seed, sizeof(seed), nonce, sealed), 0);
        /* Moved to bob's row: does not open, and nothing is left in the output. */
        memset(out, 0xaa, sizeof(out));
        assert_int_equal(phi_unseal(k, "bob", "uuid-bob", nonce, sealed, sizeof(sealed), out), -EBADMSG);
        assert_memory_equal(out, zero, sizeof(out));
        assert_int_equal(phi_unseal(k, "alic", "uuid-alic", nonce, sealed, sizeof(sealed), out), -EBADMSG);
        assert_int_equal(phi_unseal(other, "alice", "uuid-alice", nonce, sealed, sizeof(sealed), out), -EBADMSG);
        for (size_t i = 0; i < sizeof(sealed); i++) {
                sealed[i] ^= 0x01;
                assert_int_equal(phi_unseal(k, "alice", "uuid-alice", nonce, sealed, sizeof(sealed), out), -EBADMSG);
                sealed[i] ^= 0x01;
        }
        nonce[0] ^= 0x80;
        assert_int_equal(phi_unseal(k, "alice", "uuid-alice", nonce, sealed, sizeof(sealed), out), -EBADMSG);
        nonce[0] ^= 0x80;
        assert_int_equal(phi_unseal(k, "alice", "uuid-alice", nonce, sealed, sizeof(sealed), out), 0);
        /* Impossible lengths and an empty user are refused before any crypto. */
        assert_int_equal(phi_unseal(k, "alice", "uuid-alice", nonce, sealed, PHI_SEAL_TAG_BYTES, out), -EINVAL);
        assert_int_equal(phi_unseal(k, "", "uuid-x", nonce, sealed, sizeof(sealed), out), -EINVAL);
        assert_int_equal(phi_seal(k, "", "uuid-x", seed, sizeof(seed), nonce, sealed), -EINVAL);
        assert_int_equal(phi_seal(k, "alice", "uuid-alice", seed, 0, nonce, sealed), -EINVAL);
        assert_int_equal(phi_seal(k, "alice", "", seed, sizeof(seed), nonce, sealed), -EINVAL);
}

/* The identity is part of the additional data: a new person given alice's
 * name (another identity) cannot open her seed, nor can the same identity
 * under another name; and a seed sealed with an identity is not one sealed
 * for the name alone (the form of stores before identities). */
static void test_bound_to_identity(void **state) {
        _cleanup_seal_key_ phi_seal_key *k = key_of(1);
        uint8_t seed[PHI_SEAL_SEED_BYTES], out[PHI_SEAL_SEED_BYTES];
        uint8_t nonce[PHI_SEAL_NONCE_BYTES];
        uint8_t sealed[PHI_SEAL_SEED_BYTES + PHI_SEAL_TAG_BYTES];

        (void) state;
        phi_seal_seed_new(seed);
        assert_int_equal(phi_seal(k, "alice", "uuid-1", seed, sizeof(seed), nonce, sealed), 0);
        assert_int_equal(phi_unseal(k, "alice", "uuid-1", nonce, sealed, sizeof(sealed), out), 0);
        assert_memory_equal(out, seed, sizeof(seed));
        assert_int_equal(phi_unseal(k, "alice", "uuid-2", nonce, sealed, sizeof(sealed), out), -EBADMSG);
        assert_int_equal(phi_unseal(k, "bob", "uuid-1", nonce, sealed, sizeof(sealed), out), -EBADMSG);
        assert_int_equal(phi_unseal_legacy(k, "alice", nonce, sealed, sizeof(sealed), out), -EBADMSG);
        /* The NUL between them keeps "ali" + "ce..." apart from "alice" + "...". */
        assert_int_equal(phi_unseal(k, "alic", "euuid-1", nonce, sealed, sizeof(sealed), out), -EBADMSG);
        assert_int_equal(phi_unseal(k, "alice", "", nonce, sealed, sizeof(sealed), out), -EINVAL);
}

static void test_key_file(void **state) {
        struct fixture *f = *state;
        struct phi_seal_options o = { .credentials_dir = "", .key_path = f->path };
        _cleanup_seal_key_ phi_seal_key *k = NULL;
        uint8_t bytes[PHI_SEAL_KEY_BYTES];
        const char *source = NULL, *reason = NULL;

        if (geteuid() != 0)
                skip();
        assert_int_equal(phi_seal_key_load(&o, &k, &source, &reason), -ENOENT);

        memset(bytes, 7, sizeof(bytes));
        write_file(f->path, bytes, sizeof(bytes), 0600);
        assert_int_equal(phi_seal_key_load(&o, &k, &source, &reason), 0);
        assert_string_equal(source, f->path);
        phi_seal_key_free(PHI_TAKE_PTR(k));
        assert_int_equal(chmod(f->path, 0400), 0);
        assert_int_equal(phi_seal_key_load(&o, &k, NULL, NULL), 0);
        phi_seal_key_free(PHI_TAKE_PTR(k));

        assert_int_equal(chmod(f->path, 0640), 0);
        assert_int_equal(phi_seal_key_load(&o, &k, &source, &reason), -EPERM);
        assert_non_null(strstr(reason, "group or others"));
        assert_int_equal(chmod(f->path, 0604), 0);
        assert_int_equal(phi_seal_key_load(&o, &k, NULL, &reason), -EPERM);

        assert_int_equal(chmod(f->path, 0600), 0);
        assert_int_equal(chown(f->path, 65534, 65534), 0);
        assert_int_equal(phi_seal_key_load(&o, &k, NULL, &reason), -EPERM);
        assert_non_null(strstr(reason, "owned by root"));
        assert_int_equal(chown(f->path, 0, 0), 0);

        write_file(f->path, bytes, sizeof(bytes) - 1, 0600);
        assert_int_equal(phi_seal_key_load(&o, &k, NULL, &reason), -EBADMSG);
        write_file(f->path, "0123456789012345678901234567890123", 33, 0600);
        assert_int_equal(phi_seal_key_load(&o, &k, NULL, &reason), -EBADMSG);
        assert_null(k);
}

static void test_symlink_and_directory_refused(void **state) {
        struct fixture *f = *state;
        char target[160];
        struct phi_seal_options o = { .credentials_dir = "", .key_path = f->path };
        _cleanup_seal_key_ phi_seal_key *k = NULL;
        uint8_t bytes[PHI_SEAL_KEY_BYTES] = { 0 };
        const char *reason = NULL;

        if (geteuid() != 0)
                skip();
        snprintf(target, sizeof(target), "%s/real.key", f->dir);
        write_file(target, bytes, sizeof(bytes), 0600);
        (void) unlink(f->path);
        assert_int_equal(symlink(target, f->path), 0);
        assert_int_equal(phi_seal_key_load(&o, &k, NULL, &reason), -EPERM);
        assert_non_null(strstr(reason, "symbolic link"));
        /* Not even with create: the link is there, so nothing is made. */
        o.create = true;
        assert_int_equal(phi_seal_key_load(&o, &k, NULL, &reason), -EPERM);
        assert_int_equal(unlink(f->path), 0);
        assert_int_equal(mkdir(f->path, 0700), 0);
        o.create = false;
        assert_int_equal(phi_seal_key_load(&o, &k, NULL, &reason), -EPERM);
        assert_int_equal(rmdir(f->path), 0);
        assert_null(k);
}

static void test_create(void **state) {
        struct fixture *f = *state;
        struct phi_seal_options o = { .credentials_dir = "", .key_path = f->path, .create = true };
        _cleanup_seal_key_ phi_seal_key *k1 = NULL, *k2 = NULL;
        uint8_t seed[PHI_SEAL_SEED_BYTES], out[PHI_SEAL_SEED_BYTES], nonce[PHI_SEAL_NONCE_BYTES];
        uint8_t sealed[PHI_SEAL_SEED_BYTES + PHI_SEAL_TAG_BYTES];
        struct stat st;

        if (geteuid() != 0)
                skip();
        (void) unlink(f->path);
        assert_int_equal(phi_seal_key_load(&o, &k1, NULL, NULL), 0);
        assert_int_equal(lstat(f->path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_uid, 0);
        assert_int_equal(st.st_size, PHI_SEAL_KEY_BYTES);
        /* The second load reads the key the first one made, not a new one. */
        assert_int_equal(phi_seal_key_load(&o, &k2, NULL, NULL), 0);
        phi_seal_seed_new(seed);
        assert_int_equal(phi_seal(k1, "carol", "uuid-carol", seed, sizeof(seed), nonce, sealed), 0);
        assert_int_equal(phi_unseal(k2, "carol", "uuid-carol", nonce, sealed, sizeof(sealed), out), 0);
        assert_memory_equal(seed, out, sizeof(seed));
}

static void test_credential_preferred(void **state) {
        struct fixture *f = *state;
        struct phi_seal_options o = { .credentials_dir = f->creds, .key_path = f->path };
        _cleanup_seal_key_ phi_seal_key *k = NULL, *file_key = NULL;
        uint8_t bytes[PHI_SEAL_KEY_BYTES], seed[PHI_SEAL_SEED_BYTES], out[PHI_SEAL_SEED_BYTES];
        uint8_t nonce[PHI_SEAL_NONCE_BYTES], sealed[PHI_SEAL_SEED_BYTES + PHI_SEAL_TAG_BYTES];
        char cred[192];
        const char *source = NULL;

        if (geteuid() != 0)
                skip();
        assert_int_equal(mkdir(f->creds, 0700), 0);
        snprintf(cred, sizeof(cred), "%s/" PHI_SEAL_CREDENTIAL, f->creds);
        memset(bytes, 3, sizeof(bytes));
        write_file(cred, bytes, sizeof(bytes), 0400);
        memset(bytes, 4, sizeof(bytes));
        write_file(f->path, bytes, sizeof(bytes), 0600);

        assert_int_equal(phi_seal_key_load(&o, &k, &source, NULL), 0);
        assert_non_null(strstr(source, "credential"));
        file_key = key_of(4);
        phi_seal_seed_new(seed);
        assert_int_equal(phi_seal(k, "dave", "uuid-dave", seed, sizeof(seed), nonce, sealed), 0);
        assert_int_equal(phi_unseal(file_key, "dave", "uuid-dave", nonce, sealed, sizeof(sealed), out), -EBADMSG);
        phi_seal_key_free(file_key);
        file_key = key_of(3);
        assert_int_equal(phi_unseal(file_key, "dave", "uuid-dave", nonce, sealed, sizeof(sealed), out), 0);

        /* A credential readable by others is not trusted, and not skipped either. */
        phi_seal_key_free(PHI_TAKE_PTR(k));
        assert_int_equal(chmod(cred, 0444), 0);
        assert_int_equal(phi_seal_key_load(&o, &k, NULL, NULL), -EPERM);
        assert_int_equal(unlink(cred), 0);
        /* No credential in the directory: the key file is used. */
        assert_int_equal(phi_seal_key_load(&o, &k, &source, NULL), 0);
        assert_string_equal(source, f->path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_bound_to_user_and_key),
                cmocka_unit_test(test_bound_to_identity),
                cmocka_unit_test(test_key_file),
                cmocka_unit_test(test_symlink_and_directory_refused),
                cmocka_unit_test(test_create),
                cmocka_unit_test(test_credential_preferred),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * phi-legacy-seal KEYFILE USER SEEDHEX: seals a TOTP seed as phiaccessd did
 * before tokens were bound to identities (schema 3: XChaCha20-Poly1305 under
 * the 32-byte master key, the user name alone as additional data), and prints
 * "NONCEHEX SEALEDHEX". For the upgrade test (totp_identity_upgrade), which
 * builds such a store by hand. Test-only: never installed.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
        unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES], seed[64],
                nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES],
                sealed[sizeof(seed) + crypto_aead_xchacha20poly1305_ietf_ABYTES];
        char hex[2 * sizeof(sealed) + 1];
        unsigned long long sealed_len = 0;
        size_t seed_len = 0;
        FILE *f;

        if (argc != 4 || sodium_init() < 0) {
                fprintf(stderr, "usage: phi-legacy-seal KEYFILE USER SEEDHEX\n");
                return 2;
        }
        f = fopen(argv[1], "re");
        if (!f || fread(key, 1, sizeof(key), f) != sizeof(key)) {
                fprintf(stderr, "phi-legacy-seal: cannot read a 32-byte key from %s\n", argv[1]);
                return 1;
        }
        fclose(f);
        if (sodium_hex2bin(seed, sizeof(seed), argv[3], strlen(argv[3]), NULL, &seed_len, NULL) != 0 ||
            seed_len == 0) {
                fprintf(stderr, "phi-legacy-seal: bad hex seed\n");
                return 1;
        }
        randombytes_buf(nonce, sizeof(nonce));
        crypto_aead_xchacha20poly1305_ietf_encrypt(sealed, &sealed_len, seed, seed_len, (const unsigned char *) argv[2],
                                                   strlen(argv[2]), NULL, nonce, key);
        printf("%s ", sodium_bin2hex(hex, sizeof(hex), nonce, sizeof(nonce)));
        printf("%s\n", sodium_bin2hex(hex, sizeof(hex), sealed, (size_t) sealed_len));
        sodium_memzero(key, sizeof(key));
        return 0;
}

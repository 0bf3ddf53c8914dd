/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Keys, signed notes and checkpoints against golang.org/x/mod/sumdb/note's own
 * test vector (the PeterNeumann key and note: signing must reproduce the note
 * byte for byte, Ed25519 being deterministic), and every refusal a verifier
 * must make: a changed text, the wrong key, an unknown key, a key id that does
 * not match, malformed signature lines and keys, the bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "phi/audit.h"

#define GO_VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define GO_SKEY "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
#define GO_TEXT "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
#define GO_SIG "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
#define GO_NOTE GO_TEXT "\n" GO_SIG

static struct phi_audit_verifier vkey(const char *text) {
        struct phi_audit_verifier v;
        const char *error = NULL;
        int r = phi_audit_verifier_parse(text, strlen(text), &v, &error);
        if (r < 0)
                fprintf(stderr, "%s: %s\n", text, error);
        assert_int_equal(r, 0);
        return v;
}

static struct phi_audit_signer skey(const char *text) {
        struct phi_audit_signer s;
        const char *error = NULL;
        int r = phi_audit_signer_parse(text, strlen(text), &s, &error);
        if (r < 0)
                fprintf(stderr, "%s: %s\n", text, error);
        assert_int_equal(r, 0);
        return s;
}

static int open_note(const char *note, const struct phi_audit_verifier *keys, size_t n, const char *want_error) {
        const char *error = NULL;
        size_t text_len = 0, key = 99;
        int r = phi_audit_note_open(note, strlen(note), keys, n, &text_len, &key, &error);

        if (want_error) {
                assert_true(r < 0);
                assert_non_null(error);
                if (!strstr(error, want_error))
                        fprintf(stderr, "want '%s', got '%s'\n", want_error, error);
                assert_non_null(strstr(error, want_error));
        } else {
                if (r < 0)
                        fprintf(stderr, "refused: %s\n", error);
                assert_int_equal(r, 0);
        }
        return r;
}

static void test_go_vector(void **state) {
        struct phi_audit_verifier v = vkey(GO_VKEY);
        struct phi_audit_signer s = skey(GO_SKEY);
        char note[1024], sk[PHI_AUDIT_SKEY_MAX], vk[PHI_AUDIT_VKEY_MAX];
        const char *error = NULL;
        size_t len, text_len, key;
        (void) state;

        assert_string_equal(v.name, "PeterNeumann");
        assert_int_equal(v.id, 0xc74f20a3);
        assert_int_equal(s.id, 0xc74f20a3);
        assert_int_equal(phi_audit_key_id("PeterNeumann", v.pk), 0xc74f20a3);
        /* the signer's public half is the verifier's key */
        assert_memory_equal(s.sk + 32, v.pk, 32);
        /* signing reproduces the reference note byte for byte */
        assert_int_equal(phi_audit_note_sign(&s, GO_TEXT, strlen(GO_TEXT), note, sizeof(note), &len), 0);
        assert_int_equal(len, strlen(GO_NOTE));
        assert_string_equal(note, GO_NOTE);
        assert_int_equal(phi_audit_note_open(GO_NOTE, strlen(GO_NOTE), &v, 1, &text_len, &key, &error), 0);
        assert_int_equal(text_len, strlen(GO_TEXT));
        assert_int_equal(key, 0);
        /* the same key encodings from the seed */
        uint8_t seed[32];
        memcpy(seed, s.sk, 32);
        assert_int_equal(phi_audit_key_from_seed("PeterNeumann", seed, sk, vk), 0);
        assert_string_equal(sk, GO_SKEY);
        assert_string_equal(vk, GO_VKEY);
        phi_audit_signer_wipe(&s);
        for (size_t i = 0; i < sizeof(s); i++)
                assert_int_equal(((const uint8_t *) &s)[i], 0);
}

static void test_keygen(void **state) {
        char sk[PHI_AUDIT_SKEY_MAX], vk[PHI_AUDIT_VKEY_MAX], sk2[PHI_AUDIT_SKEY_MAX], vk2[PHI_AUDIT_VKEY_MAX];
        char note[1024];
        size_t len;
        (void) state;

        assert_int_equal(phi_audit_keygen("phi.example/audit", sk, vk), 0);
        assert_int_equal(phi_audit_keygen("phi.example/audit", sk2, vk2), 0);
        assert_string_not_equal(sk, sk2);       /* fresh randomness each time */
        assert_int_equal(strncmp(sk, "PRIVATE+KEY+phi.example/audit+", 30), 0);
        struct phi_audit_signer s = skey(sk);
        struct phi_audit_verifier v = vkey(vk), v2 = vkey(vk2);
        assert_int_equal(phi_audit_note_sign(&s, "hello\n", 6, note, sizeof(note), &len), 0);
        open_note(note, &v, 1, NULL);
        open_note(note, &v2, 1, "no signature by a trusted key");
        /* bad names */
        assert_int_equal(phi_audit_keygen("a+b", sk, vk), -EINVAL);
        assert_int_equal(phi_audit_keygen("a b", sk, vk), -EINVAL);
        assert_int_equal(phi_audit_keygen("", sk, vk), -EINVAL);
        assert_int_equal(phi_audit_keygen("a\xe3\x80\x80" "b", sk, vk), -EINVAL);      /* U+3000 */
        char longname[300];
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        assert_int_equal(phi_audit_keygen(longname, sk, vk), -EINVAL);
        longname[PHI_AUDIT_NAME_MAX] = '\0';
        assert_int_equal(phi_audit_keygen(longname, sk, vk), 0);
        phi_audit_signer_wipe(&s);
}

static void bad_vkey(const char *text, const char *want) {
        struct phi_audit_verifier v;
        const char *error = NULL;
        assert_int_equal(phi_audit_verifier_parse(text, strlen(text), &v, &error), -EINVAL);
        assert_non_null(error);
        if (!strstr(error, want))
                fprintf(stderr, "%s: want '%s', got '%s'\n", text, want, error);
        assert_non_null(strstr(error, want));
}

static void test_key_refusals(void **state) {
        struct phi_audit_signer s;
        const char *error;
        (void) state;

        bad_vkey("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key id does not match");
        bad_vkey("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "lowercase");
        bad_vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "44 base64");
        bad_vkey("PeterNeumann+c74f20a3+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not an Ed25519 key");
        bad_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not an Ed25519 key");
        bad_vkey("PeterNeumann c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name");
        bad_vkey("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name");
        bad_vkey("PeterNeumann", "NAME+KEYID+BASE64");
        bad_vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n", "44 base64");
        bad_vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy1!TW", "base64");
        /* every byte changed in turn is refused, as in Go's TestNewVerifier */
        char k[] = GO_VKEY;
        for (size_t i = 0; i < strlen(k); i++) {
                struct phi_audit_verifier v;
                k[i]++;
                assert_true(phi_audit_verifier_parse(k, strlen(k), &v, &error) < 0);
                k[i]--;
        }
        for (size_t len = 0; len < strlen(k); len++) {
                struct phi_audit_verifier v;
                assert_true(phi_audit_verifier_parse(k, len, &v, &error) < 0);
        }
        char sk[] = GO_SKEY;
        for (size_t i = 0; i < strlen(sk); i++) {
                sk[i]++;
                assert_true(phi_audit_signer_parse(sk, strlen(sk), &s, &error) < 0);
                sk[i]--;
        }
        /* a verifier key is not a signer key, nor the reverse */
        assert_int_equal(phi_audit_signer_parse(GO_VKEY, strlen(GO_VKEY), &s, &error), -EINVAL);
        struct phi_audit_verifier v;
        assert_int_equal(phi_audit_verifier_parse(GO_SKEY, strlen(GO_SKEY), &v, &error), -EINVAL);
}

static void test_note_refusals(void **state) {
        struct phi_audit_verifier go = vkey(GO_VKEY), keys[2];
        char other_sk[PHI_AUDIT_SKEY_MAX], other_vk[PHI_AUDIT_VKEY_MAX], note[PHI_AUDIT_NOTE_MAX * 2];
        size_t len;
        (void) state;

        assert_int_equal(phi_audit_keygen("PeterNeumann", other_sk, other_vk), 0);
        struct phi_audit_verifier other = vkey(other_vk);
        struct phi_audit_signer os = skey(other_sk);

        open_note(GO_NOTE, &go, 1, NULL);
        /* the text changed by one letter */
        char t[] = GO_NOTE;
        t[20] = 'X';
        open_note(t, &go, 1, "does not verify");
        /* the wrong key (same name, another key: a different id, so unknown) */
        open_note(GO_NOTE, &other, 1, "no signature by a trusted key");
        /* an unknown signature beside the trusted one is ignored, in any order */
        assert_int_equal(phi_audit_note_sign(&os, GO_TEXT, strlen(GO_TEXT), note, sizeof(note), &len), 0);
        char both[2048];
        snprintf(both, sizeof(both), "%s%s", GO_NOTE, strstr(note, "\n\xe2\x80\x94") + 1);
        open_note(both, &go, 1, NULL);
        keys[0] = other;
        keys[1] = go;
        size_t text_len, key;
        const char *error;
        assert_int_equal(phi_audit_note_open(both, strlen(both), keys, 2, &text_len, &key, &error), 0);
        assert_int_equal(key, 1);       /* the first line is PeterNeumann's, keys[1] */
        /* a key id changed in the signature: the line is from an unknown key */
        char badid[] = GO_NOTE;
        char *sig = strstr(badid, "x08go");
        sig[1] = 'A';
        open_note(badid, &go, 1, "no signature by a trusted key");
        /* the right key id with a bad signature */
        char badsig[] = GO_NOTE;
        sig = strstr(badsig, "x08go");
        sig[20] = sig[20] == 'A' ? 'B' : 'A';
        open_note(badsig, &go, 1, "does not verify");
        /* a trusted signature of the wrong length */
        open_note(GO_TEXT "\n\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pA==\n", &go, 1,
                  "does not verify");
        /* malformed */
        open_note(GO_TEXT "\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
                  &go, 1, "em dash");
        open_note(GO_TEXT "\n\xe2\x80\x94 PeterNeumann\n", &go, 1, "NAME SIGNATURE");
        open_note(GO_TEXT "\n\xe2\x80\x94 PeterNeumann !!!!\n", &go, 1, "not base64");
        open_note(GO_TEXT "\n\xe2\x80\x94 PeterNeumann AAAA\n", &go, 1, "not base64");   /* 3 bytes: < 5 */
        open_note(GO_TEXT "\n\xe2\x80\x94 Peter+Neumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
                  &go, 1, "bad key name");
        open_note(GO_TEXT GO_SIG, &go, 1, "no blank line");
        open_note(GO_TEXT "\n", &go, 1, "no signature line");
        char cut[] = GO_NOTE;
        cut[strlen(cut) - 1] = '\0';
        open_note(cut, &go, 1, "no signature line");
        open_note("If you think\tcryptography\n\n" GO_SIG, &go, 1, "control character");
        open_note("If you think \xff\n\n" GO_SIG, &go, 1, "not UTF-8");
        open_note(GO_NOTE, &go, 0, "no signature by a trusted key");
        /* the text may hold blank lines; signatures follow the last one */
        assert_int_equal(phi_audit_note_sign(&os, "a\n\nb\n", 5, note, sizeof(note), &len), 0);
        assert_int_equal(phi_audit_note_open(note, len, &other, 1, &text_len, NULL, &error), 0);
        assert_int_equal(text_len, 5);
        /* signing refuses what could not be opened */
        assert_int_equal(phi_audit_note_sign(&os, "no newline", 10, note, sizeof(note), &len), -EINVAL);
        assert_int_equal(phi_audit_note_sign(&os, "", 0, note, sizeof(note), &len), -EINVAL);
        assert_int_equal(phi_audit_note_sign(&os, "a\tb\n", 4, note, sizeof(note), &len), -EINVAL);
        assert_int_equal(phi_audit_note_sign(&os, "a\n", 2, note, 10, &len), -ENOBUFS);
        phi_audit_signer_wipe(&os);
}

static void test_note_bounds(void **state) {
        struct phi_audit_verifier go = vkey(GO_VKEY);
        static char note[PHI_AUDIT_NOTE_MAX + 4096];
        size_t len = 0;
        (void) state;

        /* 16 signatures are accepted (the most C2SP asks a verifier to take), 17 are not */
        len = (size_t) snprintf(note, sizeof(note), "%s", GO_NOTE);
        for (int i = 1; i < 16; i++)
                len += (size_t) snprintf(note + len, sizeof(note) - len, "\xe2\x80\x94 other%d AAAAAAAA\n", i);
        open_note(note, &go, 1, NULL);
        len += (size_t) snprintf(note + len, sizeof(note) - len, "\xe2\x80\x94 other16 AAAAAAAA\n");
        open_note(note, &go, 1, "more than 16 signatures");
        /* a note over 16 KiB is refused before anything else */
        memset(note, 'a', PHI_AUDIT_NOTE_MAX);
        note[PHI_AUDIT_NOTE_MAX - 1] = '\n';
        snprintf(note + PHI_AUDIT_NOTE_MAX, sizeof(note) - PHI_AUDIT_NOTE_MAX, "\n%s", GO_SIG);
        open_note(note, &go, 1, "longer than 16 KiB");
}

static void bad_checkpoint(const char *text, const char *want) {
        struct phi_audit_checkpoint cp;
        const char *error = NULL;
        assert_int_equal(phi_audit_checkpoint_parse(text, strlen(text), &cp, &error), -EBADMSG);
        if (!strstr(error, want))
                fprintf(stderr, "%s: want '%s', got '%s'\n", text, want, error);
        assert_non_null(strstr(error, want));
}

static void test_checkpoint(void **state) {
        struct phi_audit_checkpoint cp;
        const char *error = NULL;
        char text[512], note[1024];
        uint8_t root[32];
        size_t len, key;
        (void) state;

        /* the example of C2SP tlog-checkpoint */
        const char *ex = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        assert_int_equal(phi_audit_checkpoint_parse(ex, strlen(ex), &cp, &error), 0);
        assert_string_equal(cp.origin, "example.com/behind-the-sofa");
        assert_int_equal(cp.size, 20852163);
        assert_int_equal(cp.root[0], 0x0a);
        assert_int_equal(cp.n_extensions, 0);
        assert_int_equal(phi_audit_checkpoint_format(cp.origin, cp.size, cp.root, text, sizeof(text), &len), 0);
        assert_int_equal(len, strlen(ex));
        assert_memory_equal(text, ex, len);
        const char *ext = "o\n0\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\nx\ny z\n";
        assert_int_equal(phi_audit_checkpoint_parse(ext, strlen(ext), &cp, &error), 0);
        assert_int_equal(cp.size, 0);
        assert_int_equal(cp.n_extensions, 2);

        bad_checkpoint("o\n1\n", "fewer than three lines");
        bad_checkpoint("o\n01\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "leading zeros");
        bad_checkpoint("o\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "decimal");
        bad_checkpoint("o\n1 \nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "decimal");
        bad_checkpoint("o\n18446744073709551616\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "decimal");
        bad_checkpoint("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", "canonical base64");
        bad_checkpoint("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n", "canonical base64");
        bad_checkpoint("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\nx\n", "empty line");
        bad_checkpoint("\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "empty line");
        bad_checkpoint("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", "ending in a newline");
        char origin[PHI_AUDIT_NAME_MAX + 64];
        memset(origin, 'o', PHI_AUDIT_NAME_MAX + 1);
        snprintf(origin + PHI_AUDIT_NAME_MAX + 1, 60, "\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n");
        bad_checkpoint(origin, "longer than 256");

        /* signed and opened */
        struct phi_audit_signer s = skey(GO_SKEY);
        struct phi_audit_verifier v = vkey(GO_VKEY);
        memset(root, 0xab, sizeof(root));
        assert_int_equal(phi_audit_checkpoint_sign(&s, "phi.example/audit", 42, root, note, sizeof(note), &len), 0);
        assert_int_equal(phi_audit_checkpoint_open(note, len, &v, 1, &cp, &key, &error), 0);
        assert_string_equal(cp.origin, "phi.example/audit");
        assert_int_equal(cp.size, 42);
        assert_memory_equal(cp.root, root, 32);
        /* a signed note that is not a checkpoint */
        assert_int_equal(phi_audit_note_sign(&s, "hello\n", 6, note, sizeof(note), &len), 0);
        assert_int_equal(phi_audit_checkpoint_open(note, len, &v, 1, &cp, &key, &error), -EBADMSG);
        assert_int_equal(phi_audit_checkpoint_sign(&s, "", 1, root, note, sizeof(note), &len), -EINVAL);
        assert_int_equal(phi_audit_checkpoint_sign(&s, "a\nb", 1, root, note, sizeof(note), &len), -EINVAL);
        phi_audit_signer_wipe(&s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_go_vector),     cmocka_unit_test(test_keygen),
                cmocka_unit_test(test_key_refusals),  cmocka_unit_test(test_note_refusals),
                cmocka_unit_test(test_note_bounds),   cmocka_unit_test(test_checkpoint),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phictl audit verify FILE --key PUBKEY: checks an audit export offline, on an
 * auditor's machine, with no daemon and no store: only the file and the log's
 * public key (phi-audit(5)). Everything is libphi_audit's; this file reads the
 * file and the keys and prints the verdict. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "phi/audit.h"
#include "phi/macro.h"

#include "phictl.h"

#define KEY_FILE_MAX 65536                      /* a file of verifier keys, one a line */
#define EXPORT_MAX (UINT64_C(64) << 30)         /* 64 GiB: some 200 million records */

static int audit_usage(void) {
        fprintf(stderr, "Usage: phictl audit verify FILE --key PUBKEY\n"
                        "       phictl audit verify           (the live store, by the daemon; auditors)\n"
                        "PUBKEY is the log's verifier key (NAME+KEYID+BASE64) or a file holding it.\n");
        return EXIT_USAGE;
}

/* Adds the keys of one --key: the key itself, or a file of keys, one a line
 * ('#' starts a comment line). */
static int add_keys(const char *arg, struct phi_audit_verifier *keys, size_t *n) {
        char buf[KEY_FILE_MAX + 1];
        const char *error = NULL;
        _cleanup_close_ int fd = -1;
        size_t len = 0, added = 0;
        ssize_t k;

        if (*n < PHI_AUDIT_KEYS_MAX && phi_audit_verifier_parse(arg, strlen(arg), &keys[*n], &error) == 0) {
                (*n)++;
                return 0;
        }
        fd = open(arg, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (strchr(arg, '+'))
                        fprintf(stderr, "phictl: --key %s: %s\n", arg, error ? error : "too many keys");
                else
                        fprintf(stderr, "phictl: --key %s: %s\n", arg, phi_errno_text(errno));
                return -EINVAL;
        }
        while (len <= KEY_FILE_MAX && (k = read(fd, buf + len, KEY_FILE_MAX + 1 - len)) > 0)
                len += (size_t) k;
        if (len > KEY_FILE_MAX) {
                fprintf(stderr, "phictl: --key %s: larger than %d bytes\n", arg, KEY_FILE_MAX);
                return -EFBIG;
        }
        for (size_t pos = 0, line = 1; pos < len; line++) {
                char *s = buf + pos, *end = memchr(s, '\n', len - pos);
                size_t l = end ? (size_t) (end - s) : len - pos;
                pos += l + 1;
                while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r'))
                        l--;
                if (l == 0 || s[0] == '#')
                        continue;
                if (*n >= PHI_AUDIT_KEYS_MAX) {
                        fprintf(stderr, "phictl: --key: more than %d keys\n", PHI_AUDIT_KEYS_MAX);
                        return -E2BIG;
                }
                if (phi_audit_verifier_parse(s, l, &keys[*n], &error) < 0) {
                        fprintf(stderr, "phictl: %s:%zu: not a verifier key: %s\n", arg, line, error);
                        return -EINVAL;
                }
                (*n)++;
                added++;
        }
        if (added == 0) {
                fprintf(stderr, "phictl: --key %s: no verifier key in the file\n", arg);
                return -EINVAL;
        }
        return 0;
}

static void json_text(const char *s) {
        putchar('"');
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p == '"' || *p == '\\')
                        printf("\\%c", *p);
                else if (*p < 0x20)
                        printf("\\u%04x", *p);
                else
                        putchar(*p);
        putchar('"');
}

static int audit_verify(const struct ctl *ctl, int argc, char **argv) {
        static const struct option options[] = {
                { "key", required_argument, NULL, 'k' },
                {},
        };
        struct phi_audit_verifier keys[PHI_AUDIT_KEYS_MAX];
        struct phi_audit_export_result res;
        _cleanup_close_ int fd = -1;
        size_t n_keys = 0;
        const char *path;
        void *map = NULL;
        struct stat st;
        int c, r;

        optind = 0;     /* 0: glibc re-initialises its scan state (main() used getopt) */
        while ((c = getopt_long(argc, argv, "k:", options, NULL)) != -1) {
                if (c != 'k')
                        return audit_usage();
                if (add_keys(optarg, keys, &n_keys) < 0)
                        return EXIT_USAGE;
        }
        /* No FILE: the daemon verifies its live store. */
        if (optind == argc && n_keys == 0)
                return ctl_audit_verify_live(ctl);
        if (optind != argc - 1 || n_keys == 0) {
                if (n_keys == 0 && optind == argc - 1)
                        fprintf(stderr, "phictl: audit verify FILE needs the log's public key: --key PUBKEY\n");
                return audit_usage();
        }
        path = argv[optind];
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "phictl: %s: %s\n", path, phi_errno_text(errno));
                return EXIT_USAGE;
        }
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size > EXPORT_MAX) {
                fprintf(stderr, "phictl: %s: not a regular file of at most 64 GiB\n", path);
                return EXIT_USAGE;
        }
        if (st.st_size > 0) {
                map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
                if (map == MAP_FAILED) {
                        fprintf(stderr, "phictl: %s: %s\n", path, phi_errno_text(errno));
                        return EXIT_REFUSED;
                }
                (void) madvise(map, (size_t) st.st_size, MADV_SEQUENTIAL);
        }
        r = phi_audit_export_verify(map, (size_t) st.st_size, keys, n_keys, &res);
        if (map)
                (void) munmap(map, (size_t) st.st_size);
        if (ctl->json) {
                if (r == 0)
                        printf("{\"verified\":true,\"records\":%llu,\"first\":%llu,\"tree_size\":%llu,"
                               "\"checkpoints\":%llu,\"origin\":",
                               (unsigned long long) res.records, (unsigned long long) res.first,
                               (unsigned long long) res.tree_size, (unsigned long long) res.checkpoints);
                else if (res.has_bad_seq)
                        printf("{\"verified\":false,\"bad_seq\":%llu,\"error\":", (unsigned long long) res.bad_seq);
                else
                        printf("{\"verified\":false,\"bad_seq\":null,\"error\":");
                json_text(r == 0 ? res.origin : res.what);
                if (r == 0) {
                        printf(",\"key\":");
                        json_text(res.key);
                }
                printf("}\n");
        } else if (r == 0) {
                printf("verified:    %s\n", path);
                if (res.records > 0)
                        printf("records:     %llu (seq %llu to %llu)\n", (unsigned long long) res.records,
                               (unsigned long long) res.first, (unsigned long long) (res.first + res.records - 1));
                else
                        printf("records:     0 (from seq %llu)\n", (unsigned long long) res.first);
                printf("tree size:   %llu\n"
                       "checkpoints: %llu\n"
                       "origin:      %s\n"
                       "signed by:   %s\n",
                       (unsigned long long) res.tree_size, (unsigned long long) res.checkpoints, res.origin,
                       res.key);
        } else
                fprintf(stderr, "phictl: %s: %s\n", path, res.what);
        return r == 0 ? EXIT_DONE : EXIT_REFUSED;
}

int verb_audit(const struct ctl *ctl, int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "verify") == 0)
                return audit_verify(ctl, argc - 1, argv + 1);
        if (argc < 2)
                return audit_usage();
        fprintf(stderr, "phictl: unknown audit verb '%s'\n", argv[1]);
        return audit_usage();
}

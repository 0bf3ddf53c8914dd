/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phi-nss-loop: test-only program. dlopen()s an NSS module and calls its
 * _nss_phi_getpwnam_r, _nss_phi_getgrgid_r and _nss_phi_initgroups_dyn COUNT
 * times each, for NAME, GID. The nss_syscalls test runs it under strace with two
 * counts: the number of system calls must not grow with COUNT.
 *
 *   phi-nss-loop MODULE.so NAME GID COUNT
 */
#include <dlfcn.h>
#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>

typedef enum nss_status (*pwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*grgid_fn)(gid_t, struct group *, char *, size_t, int *);
typedef enum nss_status (*initgroups_fn)(const char *, gid_t, long int *, long int *, gid_t **,
                                         long int, int *);

int main(int argc, char **argv) {
        static char buf[65536];
        pwnam_fn pwnam;
        grgid_fn grgid;
        initgroups_fn initgroups;
        gid_t *groups;
        void *h;
        long count, ok = 0;

        if (argc != 5 || (count = atol(argv[4])) < 1) {
                fprintf(stderr, "usage: phi-nss-loop MODULE.so NAME GID COUNT\n");
                return 2;
        }
        h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                fprintf(stderr, "phi-nss-loop: %s\n", dlerror());
                return 1;
        }
        *(void **) &pwnam = dlsym(h, "_nss_phi_getpwnam_r");
        *(void **) &grgid = dlsym(h, "_nss_phi_getgrgid_r");
        *(void **) &initgroups = dlsym(h, "_nss_phi_initgroups_dyn");
        /* Allocated once up front: a realloc inside the loop could mmap. */
        groups = malloc(4096 * sizeof(gid_t));
        if (!pwnam || !grgid || !initgroups || !groups)
                return 1;
        for (long i = 0; i < count; i++) {
                struct passwd pw;
                struct group gr;
                long start = 1, size = 4096;
                int err = 0;

                groups[0] = 0;
                ok += pwnam(argv[2], &pw, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS;
                ok += grgid((gid_t) atol(argv[3]), &gr, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS;
                ok += initgroups(argv[2], 0, &start, &size, &groups, 0, &err) == NSS_STATUS_SUCCESS;
        }
        printf("%ld of %ld lookups answered\n", ok, 3 * count);
        free(groups);
        return ok == 3 * count ? 0 : 1;
}

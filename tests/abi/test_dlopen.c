/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Loads a module the way libpam and glibc do (dlopen with RTLD_NOW, so every
 * undefined symbol must resolve) and looks up the entry points they call.
 * Usage: test_dlopen MODULE SYMBOL... */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
        void *h;
        int failed = 0;

        if (argc < 3) {
                fprintf(stderr, "usage: %s MODULE SYMBOL...\n", argv[0]);
                return 2;
        }
        h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                printf("FAIL: dlopen %s: %s\n", argv[1], dlerror());
                return 1;
        }
        for (int i = 2; i < argc; i++) {
                if (!dlsym(h, argv[i])) {
                        printf("FAIL: %s has no %s\n", argv[1], argv[i]);
                        failed = 1;
                }
        }
        dlclose(h);
        if (!failed)
                printf("ok: %s loads and has %d entry points\n", argv[1], argc - 2);
        return failed;
}

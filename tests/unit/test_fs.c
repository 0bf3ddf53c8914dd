/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "phi/fs.h"

/* The directory of a path is found for every shape of path, and a missing
 * one is an error, not a silent success (a key whose name was never synced
 * must not be reported durable). */
static void test_fsync_parent(void **state) {
        char dir[] = "/tmp/phi-test-fs.XXXXXX", path[64], missing[80];

        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/key", dir);
        snprintf(missing, sizeof(missing), "%s/gone/key", dir);
        assert_int_equal(phi_fs_fsync_parent(path), 0);
        assert_int_equal(phi_fs_fsync_parent("/key"), 0);
        assert_int_equal(phi_fs_fsync_parent("key"), 0);
        assert_int_equal(phi_fs_fsync_dir(dir), 0);
        assert_int_equal(phi_fs_fsync_parent(missing), -ENOENT);
        assert_int_equal(phi_fs_fsync_dir(missing), -ENOENT);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fsync_parent),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Attributes and cleanup helpers shared by every phi component. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _phi_warn_unused_ __attribute__((warn_unused_result))
#define _phi_nonnull_ __attribute__((nonnull))
#define _phi_nonnull_args_(...) __attribute__((nonnull(__VA_ARGS__)))
#define _phi_printf_(a, b) __attribute__((format(printf, a, b)))
#define _phi_unused_ __attribute__((unused))
#define _phi_export_ __attribute__((visibility("default")))
#define _cleanup_(f) __attribute__((cleanup(f)))

#define PHI_ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Defines name##p(type *p) that calls func(*p) when *p is set: destructors take NULL,
 * so a cleanup variable may be left unset on any path. */
#define PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)        \
        static inline void func##p(type *p) {              \
                if (*p)                                    \
                        func(*p);                          \
        }

static inline void phi_freep(void *p) {
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(phi_freep)

/* Closing an fd must not clobber the errno a caller is about to report. */
static inline int phi_close_safe(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -1;
}
static inline void phi_closep(int *fd) {
        (void) phi_close_safe(*fd);
}
#define _cleanup_close_ _cleanup_(phi_closep)

/* Returns the value and leaves the variable empty so that cleanup skips it. */
#define PHI_TAKE_PTR(p)                        \
        ({                                     \
                __typeof__(p) _taken = (p);    \
                (p) = NULL;                    \
                _taken;                        \
        })
#define PHI_TAKE_FD(fd)                        \
        ({                                     \
                int _taken = (fd);             \
                (fd) = -1;                     \
                _taken;                        \
        })

/* errno after a failed libc call as a negative value; never 0, so a caller
 * cannot mistake a failure for success when errno was left unset. */
static inline int phi_negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

/* Thread-safe text of an errno value, negative or positive (strerror() is not). */
static inline const char *phi_errno_text(int error) {
        const char *s = strerrordesc_np(error < 0 ? -error : error);
        return s ? s : "Unknown error";
}

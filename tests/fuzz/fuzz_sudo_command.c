/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sudo_phi's command line from arbitrary argv bytes (what a sudo user types):
 * the result is always one line of valid UTF-8 within the wire's bound that
 * the wire takes as PHI_TAG_COMMAND, and, when nothing was cut, unescaping it
 * gives back exactly the arguments joined by spaces. Input: the arguments
 * separated by NUL bytes, the first being the command. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "phi/parse.h"
#include "phi/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 256

/* \\ and \xNN back to bytes; -1 on anything else after a backslash. */
static long unescape(const char *s, char *out) {
        size_t n = 0;

        while (*s) {
                if (*s != '\\') {
                        out[n++] = *s++;
                        continue;
                }
                if (s[1] == '\\') {
                        out[n++] = '\\';
                        s += 2;
                } else if (s[1] == 'x' && s[2] && s[3]) {
                        char hex[3] = { s[2], s[3], 0 };
                        char *end;
                        out[n++] = (char) strtoul(hex, &end, 16);
                        if (*end)
                                return -1;
                        s += 4;
                } else
                        return -1;
        }
        out[n] = '\0';
        return (long) n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *copy = malloc(size + 1), *argv[MAX_ARGS + 1], *joined = NULL, *back = NULL;
        char out[PHI_SUDO_COMMAND_MAX + 1];
        size_t argc = 0, len;
        phi_msg *m = NULL;

        if (!copy)
                return 0;
        memcpy(copy, data, size);
        copy[size] = '\0';
        for (size_t i = 0; i <= size && argc < MAX_ARGS; i += strlen(copy + i) + 1)
                argv[argc++] = copy + i;
        argv[argc] = NULL;
        phi_sudo_command_line(NULL, argv, out);
        len = strlen(out);
        if (len > PHI_SUDO_COMMAND_MAX || !phi_utf8_valid(out, len))
                abort();
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) out[i] < 0x20 || out[i] == 0x7f)
                        abort();
        m = phi_msg_new(PHI_MSG_SUDO_CHECK);
        if (!m || phi_msg_put_str(m, PHI_TAG_COMMAND, out) != 0)
                abort();
        phi_msg_free(m);
        if (!strstr(out, " [cut: ")) {
                size_t total = 0;
                joined = malloc(size + argc + 1);
                back = malloc(len + 1);
                if (!joined || !back)
                        abort();
                for (size_t i = 0; i < argc; i++) {
                        size_t k = strlen(argv[i]);
                        memcpy(joined + total, argv[i], k);
                        total += k;
                        if (i + 1 < argc)
                                joined[total++] = ' ';
                }
                joined[total] = '\0';
                if (unescape(out, back) != (long) total || memcmp(back, joined, total) != 0)
                        abort();
        }
        free(joined);
        free(back);
        free(copy);
        return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sudo_phi's command lines; see command.h. */

#include <stdio.h>
#include <string.h>

#include "command.h"
#include "phi/parse.h"

/* Appends the bytes of arg to out (len so far, cap bytes), escaped: a
 * backslash doubled, control bytes and bytes that are not UTF-8 as \xNN, so
 * that the record is one line of valid text and says exactly what ran.
 * false when it did not fit (out is then cut at a whole escape). */
bool phi_sudo_escape(char *out, size_t *len, size_t cap, const char *arg) {
        const unsigned char *p = (const unsigned char *) arg;

        while (*p) {
                char esc[5];
                size_t n = 1, k;

                /* The longest valid UTF-8 sequence starting here. */
                if (*p >= 0x80) {
                        size_t want = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 1;
                        size_t have = 0;
                        while (have < want && p[have])
                                have++;
                        n = have == want && phi_utf8_valid((const char *) p, want) ? want : 0;
                }
                if (n == 0 || *p < 0x20 || *p == 0x7f || *p == '\\') {
                        if (*p == '\\')
                                snprintf(esc, sizeof(esc), "\\\\");
                        else
                                snprintf(esc, sizeof(esc), "\\x%02x", *p);
                        k = strlen(esc);
                        if (*len + k >= cap) {
                                out[*len] = '\0';
                                return false;
                        }
                        memcpy(out + *len, esc, k);
                        *len += k;
                        p++;
                        continue;
                }
                if (*len + n >= cap) {
                        out[*len] = '\0';
                        return false;
                }
                memcpy(out + *len, p, n);
                *len += n;
                p += n;
        }
        out[*len] = '\0';
        return true;
}

void phi_sudo_command_line(const char *command, char *const run_argv[], char out[static PHI_SUDO_COMMAND_MAX + 1]) {
        const size_t cap = PHI_SUDO_COMMAND_MAX + 1 - PHI_SUDO_CUT_NOTE_MAX;
        size_t len = 0, total = 0, argc = 0;
        bool fits = true;

        out[0] = '\0';
        if (!command && run_argv)
                command = run_argv[0];
        fits = phi_sudo_escape(out, &len, cap, command ? command : "");
        for (size_t i = 1; fits && run_argv && run_argv[0] && run_argv[i]; i++) {
                fits = len + 1 < cap;
                if (fits) {
                        out[len++] = ' ';
                        out[len] = '\0';
                        fits = phi_sudo_escape(out, &len, cap, run_argv[i]);
                }
        }
        if (!fits) {
                for (size_t i = 0; run_argv && run_argv[i]; i++, argc++)
                        total += strlen(run_argv[i]) + 1;
                snprintf(out + len, PHI_SUDO_COMMAND_MAX + 1 - len, " [cut: %zu arguments, %zu bytes]", argc,
                         total);
        }
}

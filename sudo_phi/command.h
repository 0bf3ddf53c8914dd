/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* How sudo_phi writes a command line for the record: one line of valid UTF-8
 * text that says exactly what ran. Arguments are joined with single spaces; a
 * backslash is doubled; control bytes (newline, tab, escape...), DEL and bytes
 * that are not part of valid UTF-8 are written as \xNN. So a space inside one
 * argument and the space between two are told apart only by the argv count
 * sudo logs itself; nothing can forge a second journal line or a terminal
 * escape. */

#include <stdbool.h>
#include <stddef.h>

#include "phi/macro.h"

/* The wire's bound on PHI_TAG_COMMAND (wire.c). A longer line is cut at an
 * argument or escape boundary and ends with " [cut: N arguments, M bytes]",
 * so that a cut record is never mistaken for the whole command. */
#define PHI_SUDO_COMMAND_MAX 8192
#define PHI_SUDO_CUT_NOTE_MAX 72

/* Appends arg, escaped, to out, which holds *len bytes of cap: false when it
 * did not all fit (out then ends at a whole escape, NUL-terminated). */
bool phi_sudo_escape(char *out, size_t *len, size_t cap, const char *arg) _phi_nonnull_;

/* The command line: `command` (sudo's resolved path; NULL: argv[0]) and
 * argv[1..] (argv may be NULL). */
void phi_sudo_command_line(const char *command, char *const argv[], char out[static PHI_SUDO_COMMAND_MAX + 1])
        _phi_nonnull_args_(3);

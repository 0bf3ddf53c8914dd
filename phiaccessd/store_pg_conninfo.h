/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The PostgreSQL store's connection string ([store] uri): what the
 * configuration accepts, and how it is shown. Both go through libpq's own
 * parser (PQconninfoParse), so that the check reads the string exactly as the
 * connection will: key=value pairs or a postgresql:// URI, host lists
 * included. */

#include <stddef.h>

#include "phi/macro.h"

/* Longer connection strings are refused (a host list of a few dozen names
 * fits). */
#define PHI_PG_CONNINFO_MAX 1024

/* 0 when uri is a connection string libpq reads and that is safe to use:
 * every host a Unix-socket directory (starting with '/', or none given: the
 * default socket), or else sslmode=verify-full or verify-ca, so that a
 * server's certificate is checked against its name or CA. -EINVAL with a
 * sentence in why that names the fix (it never quotes the string, which may
 * hold a password). */
int phi_pg_conninfo_check(const char *uri, char *why, size_t why_len) _phi_warn_unused_ _phi_nonnull_;

/* Where uri points, for logs and phictl status: "HOST:PORT[,HOST:PORT...]
 * db NAME" (a socket directory as the host), never a password or any other
 * setting. "(unparsable)" when libpq cannot read it. */
void phi_pg_conninfo_display(const char *uri, char *out, size_t out_len) _phi_nonnull_;

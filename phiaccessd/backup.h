/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Backup and restore of the store's shared part (phiaccessd(8), BACKUP AND
 * RESTORE).
 *
 * Backup (phictl backup FILE), online: phictl creates FILE itself (O_EXCL,
 * 0600, as the caller) and passes the descriptor with the request. The daemon
 * cannot open the caller's paths, and should not: it runs without
 * capabilities under ProtectHome= and PrivateTmp=, and a path would let it
 * be aimed at files the caller could not write. It copies a snapshot of the
 * store (SQLite's online backup API, while logins go on committing) into a
 * temporary file of its own state directory, checks the copy, writes it into
 * the descriptor, fdatasyncs it, and removes the temporary file.
 *
 * Restore (phiaccessd --restore FILE), offline: with the daemon stopped
 * (the instance lock of main.c is held throughout), FILE is copied beside
 * the store, checked there (header, integrity, a phi store of a schema this
 * code knows), migrated, given the replay floor, synced, and renamed over the
 * store; the store it replaces is kept beside it.
 */

#include <stdio.h>

#include "config.h"
#include "dispatch.h"

/* PHI_MSG_BACKUP: the descriptor is caller->passed_fd. */
int phi_handle_backup(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                      phi_msg **ret_reply, uint64_t *ret_ticket);

/* Replaces c's store with the backup in file; the caller holds the instance
 * lock. What was done goes to out, a refusal (the store unchanged) to err;
 * the restore is journaled as store_restored with actor. */
int phi_backup_restore(const struct phi_config *c, const char *file, const char *actor, FILE *out, FILE *err)
        _phi_nonnull_;

/* The replay floor of a restore (every watermark raised to the step of now
 * plus the window, tickets removed, spent failure counters pruned) in c's
 * store as it is: for a store restored by the database's own tools. Safe
 * while daemons run; journaled as store_restored. */
int phi_backup_replay_floor(const struct phi_config *c, const char *actor, FILE *out, FILE *err) _phi_nonnull_;
/* Removes what a backup or restore interrupted by a crash left beside the
 * store (STORE.backup-in-progress-XXXXXX: a copy of every sealed seed;
 * STORE.restore-in-progress-XXXXXX; and their side files). Called at start, under the instance lock,
 * when neither can be running. */
void phi_backup_remove_leftovers(const char *store) _phi_nonnull_;

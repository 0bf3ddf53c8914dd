/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A file made durable with fsync() can still vanish at a power loss if the
 * directory entry naming it (after creat, link or rename) was not synced too. */

/* fsync() of the directory DIR; -errno on failure. */
int phi_fs_fsync_dir(const char *dir);

/* fsync() of the directory holding PATH ("." for a bare name); -errno. */
int phi_fs_fsync_parent(const char *path);

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "phi/macro.h"

/*
 * Draws text (an otpauth:// URI) as a QR code for a terminal: UTF-8 half
 * blocks, two module rows per line, light modules drawn, so that a dark
 * terminal shows dark modules on a light field, as scanners expect. Used by
 * phictl totp enroll and by the daemon for enrolment at login (pam_phi, a
 * module inside sshd, draws nothing itself).
 *
 * *ret is one allocation ending in "\n\0"; it encodes the secret, so the
 * caller frees it with phi_secret_free_str(). -EINVAL for text libqrencode
 * cannot encode (empty, or too long), -ENOMEM.
 */
int phi_qr_draw(const char *text, char **ret) _phi_warn_unused_ _phi_nonnull_;

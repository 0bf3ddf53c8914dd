/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libqrencode gives the module matrix; its text writers live in the qrencode
 * command-line tool, not in the library, so the drawing is done here. */

#include <errno.h>
#include <qrencode.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "phi/secret.h"
#include "qr.h"

#define QUIET_ZONE 2                  /* modules of light border; scanners want some */
#define BLOCK_BYTES 3                 /* every half block is a 3-byte UTF-8 sequence */

static bool module_dark(const QRcode *qr, int x, int y) {
        int qx = x - QUIET_ZONE, qy = y - QUIET_ZONE;

        return qx >= 0 && qx < qr->width && qy >= 0 && qy < qr->width && (qr->data[qy * qr->width + qx] & 1);
}

int phi_qr_draw(const char *text, char **ret) {
        QRcode *qr = NULL;
        char *out = NULL, *p;
        size_t lines, line_bytes;
        int size, r = 0;

        if (!*text)
                return -EINVAL;
        /* libqrencode copies the text into buffers of its own; QRcode_free() does
         * not wipe them, but the bit matrix alone is all that outlives the call. */
        qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
        if (!qr) {
                r = errno == ENOMEM ? -ENOMEM : -EINVAL;
                goto out;
        }
        size = qr->width + 2 * QUIET_ZONE;
        lines = ((size_t) size + 1) / 2;
        line_bytes = (size_t) size * BLOCK_BYTES + 1;
        /* Sized once: a growing buffer would leave copies of the code behind. */
        out = malloc(lines * line_bytes + 1);
        if (!out) {
                r = -ENOMEM;
                goto out;
        }
        p = out;
        for (int y = 0; y < size; y += 2) {
                for (int x = 0; x < size; x++) {
                        bool top = module_dark(qr, x, y);
                        /* Below the code's last row: paint it as the terminal's dark. */
                        bool bottom = y + 1 < size ? module_dark(qr, x, y + 1) : true;
                        const char *block = !top && !bottom ? "\xe2\x96\x88"   /* █ both light */
                                            : !top         ? "\xe2\x96\x80"   /* ▀ upper light */
                                            : !bottom      ? "\xe2\x96\x84"   /* ▄ lower light */
                                                           : " ";
                        size_t n = strlen(block);   /* the buffer has room for 3 */
                        memcpy(p, block, n);
                        p += n;
                }
                *p++ = '\n';
        }
        *p = 0;
        *ret = PHI_TAKE_PTR(out);
out:
        QRcode_free(qr);
        return r;
}

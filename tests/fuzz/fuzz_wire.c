/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary bytes to the frame decoder. A body that decodes must encode
 * back to the very same bytes: the codec has one spelling per message, so a
 * reader and a writer can never disagree about what was said. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "phi/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        phi_msg *m = NULL;
        uint8_t *frame = NULL;
        size_t len = 0;

        if (phi_msg_decode_frame(data, size, &m) == 0) {
                if (phi_msg_encode(m, &frame, &len) != 0 || len != size ||
                    memcmp(frame, data, size) != 0)
                        abort();
        }
        free(frame);
        phi_msg_free(m);
        /* The body decoder alone, as the daemon calls it after reading the prefix. */
        if (size > 0 && phi_msg_decode(data, size, &m) == 0)
                phi_msg_free(m);
        return 0;
}

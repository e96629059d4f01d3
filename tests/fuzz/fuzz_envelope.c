/*
 * tests/fuzz/fuzz_envelope.c - the spool record reader on arbitrary bytes: decode must not
 * crash, and whatever decodes must encode and decode again to the same envelope.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct env_msg m, m2;
    char err[128];
    if (env_decode((const char *)data, size, &m, err, sizeof err) != 0)
        return 0;
    const char *st = memmem(data, size, "postel-status 1\n", 16);
    if (st)
        (void)env_status_decode(st, size - (size_t)(st - (const char *)data), &m, err,
            sizeof err);
    struct buf b;
    buf_init(&b, 0);
    if (env_encode(&m, &b) != 0)
        abort();
    if (env_decode(b.p, b.len, &m2, err, sizeof err) != 0)
        abort();
    if (strcmp(m.sender, m2.sender) != 0 || m.nrcpt != m2.nrcpt || strcmp(m.id, m2.id) != 0)
        abort();
    for (size_t i = 0; i < m.nrcpt; i++)
        if (strcmp(m.rcpts[i].addr, m2.rcpts[i].addr) != 0)
            abort();
    env_free(&m);
    env_free(&m2);
    buf_free(&b);
    return 0;
}

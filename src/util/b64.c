/*
 * util/b64.c - base64 encoding by EVP_EncodeBlock().
 *
 * Owns:  splitting long input into blocks EVP_EncodeBlock() takes (its length is an int).
 * Never: allocates outside the caller's buffer; decodes.
 */
#include "util/b64.h"

#include <assert.h>
#include <stdint.h>

#include <openssl/evp.h>

#define B64_CHUNK (3UL << 20)   /* octets encoded per call: a multiple of 3 that fits an int */

size_t b64_encoded_len(size_t n)
{
    if ((n + 2) / 3 > SIZE_MAX / 4 || n > SIZE_MAX - 2)
        return SIZE_MAX;
    return (n + 2) / 3 * 4;
}

size_t b64_encode_block(char *out, const void *in, size_t n)
{
    int r;

    assert(n <= 3 * 1024);
    r = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    assert(r >= 0 && (size_t)r == b64_encoded_len(n));
    return (size_t)r;
}

int b64_encode(const void *in, size_t n, struct buf *out)
{
    const unsigned char *s = in;
    size_t elen = b64_encoded_len(n), o = 0;

    if (n == 0)
        return 0;
    if (elen == SIZE_MAX)
        return -1;
    /* buf_reserve() keeps one octet past elen, room for the NUL EVP_EncodeBlock() writes. */
    if (buf_reserve(out, elen) == -1)
        return -1;
    for (size_t i = 0; i < n; i += B64_CHUNK) {
        size_t k = n - i < B64_CHUNK ? n - i : B64_CHUNK;
        int r = EVP_EncodeBlock((unsigned char *)out->p + out->len + o, s + i, (int)k);

        assert(r >= 0);
        o += (size_t)r;
    }
    assert(o == elen);
    out->len += elen;
    return 0;
}

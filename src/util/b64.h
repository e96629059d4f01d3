/*
 * util/b64.h - base64 encoding (RFC 4648 4) into capped buffers, by OpenSSL's
 * EVP_EncodeBlock().
 *
 * Owns:  the one base64 encoder postel uses (SASL challenges and responses, MIME bodies,
 *        encoded words).
 * Never: decodes: the strict SASL decoder is auth_b64_decode() (policy/auth.h); MIME parts
 *        are never decoded.
 */
#ifndef POSTEL_UTIL_B64_H
#define POSTEL_UTIL_B64_H

#include <stddef.h>

#include "util/buf.h"

/* Characters of the padded encoding of n octets: 4 * ceil(n / 3); SIZE_MAX if that overflows. */
size_t b64_encoded_len(size_t n);

/*
 * Append the base64 encoding (RFC 4648 4, padded with '=', no line breaks) of the n octets at
 * in to out; n == 0 appends nothing. Returns 0, or -1 (out unchanged) if out's cap would be
 * passed or the length overflows.
 */
int b64_encode(const void *in, size_t n, struct buf *out);

/*
 * Write the padded encoding of n octets at in (n <= 3 * 1024) to out, which has room for
 * b64_encoded_len(n) + 1 characters; a NUL follows the encoding. Returns its length.
 */
size_t b64_encode_block(char *out, const void *in, size_t n);

#endif

/*
 * policy/sasl.c - SASL payloads of SMTP AUTH (RFC 4954): PLAIN (RFC 4616) and LOGIN.
 *
 * Owns:  the strict base64 decoder (canonical RFC 4648 4 only), PLAIN and LOGIN payload
 *        checks (field counts, lengths, UTF-8, authzid == authcid).
 * Never: looks users up or checks passwords (passwd.c); leaves a decoded password in memory
 *        it used; does I/O.
 * Limits: policy/auth.h (AUTH_PLAIN_B64_MAX, AUTH_LOGIN_B64_MAX, AUTH_USER_MAX, AUTH_ZID_MAX,
 *        AUTH_PASS_MAX).
 */
#include "policy/auth.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "policy/authutil.h"
#include "util/b64.h"

/* ---- base64 ---- */

static int b64_val(char ch)
{
    unsigned char c = (unsigned char)ch;

    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

ssize_t auth_b64_decode(const char *in, size_t n, unsigned char *out, size_t osz)
{
    size_t pad = 0, olen, o = 0;

    if (n == 1 && in[0] == '=')
        return 0;                               /* RFC 4954 4: empty response */
    if (n % 4 != 0)
        return -1;
    if (n == 0)
        return 0;
    if (in[n - 1] == '=')
        pad = in[n - 2] == '=' ? 2 : 1;
    olen = n / 4 * 3 - pad;
    if (olen > osz || olen > (size_t)SSIZE_MAX)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        size_t real = last ? 4 - pad : 4;       /* alphabet characters in this group */
        int v[4] = { 0, 0, 0, 0 };
        uint32_t w;

        for (size_t j = 0; j < real; j++) {
            v[j] = b64_val(in[i + j]);          /* '=' before the end fails here */
            if (v[j] < 0)
                return -1;
        }
        /* RFC 4648 3.5: the bits padding leaves over must be zero (canonical form). */
        if ((real == 2 && (v[1] & 0x0f) != 0) || (real == 3 && (v[2] & 0x03) != 0))
            return -1;
        w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (real >= 3)
            out[o++] = (unsigned char)(w >> 8);
        if (real == 4)
            out[o++] = (unsigned char)w;
    }
    return (ssize_t)o;
}

int auth_b64_encode(const void *in, size_t n, struct buf *out)
{
    return b64_encode(in, n, out);
}

/* ---- PLAIN and LOGIN ---- */

enum auth_perr auth_plain_decode(const char *b64, size_t n, char *user, size_t usz,
    char *pass, size_t psz)
{
    unsigned char msg[AUTH_PLAIN_MAX];
    const unsigned char *z1, *z2, *cid, *pw;
    size_t zlen, clen, plen, m;
    ssize_t r;
    enum auth_perr res;

    authutil_clear(user, usz);
    authutil_clear(pass, psz);
    if (n > AUTH_PLAIN_B64_MAX)
        return AUTH_P_TOO_LONG;
    r = auth_b64_decode(b64, n, msg, sizeof msg);
    if (r < 0) {
        res = AUTH_P_BAD_B64;
        goto out;
    }
    m = (size_t)r;
    z1 = memchr(msg, '\0', m);
    z2 = z1 ? memchr(z1 + 1, '\0', m - (size_t)(z1 + 1 - msg)) : NULL;
    if (z2 == NULL || memchr(z2 + 1, '\0', m - (size_t)(z2 + 1 - msg)) != NULL) {
        res = AUTH_P_BAD_FORMAT;                /* not exactly two NULs */
        goto out;
    }
    cid = z1 + 1;
    pw = z2 + 1;
    zlen = (size_t)(z1 - msg);
    clen = (size_t)(z2 - cid);
    plen = m - (size_t)(pw - msg);
    if (clen == 0 || plen == 0) {
        res = AUTH_P_BAD_FORMAT;
        goto out;
    }
    if (zlen > AUTH_ZID_MAX || clen > AUTH_USER_MAX || plen > AUTH_PASS_MAX) {
        res = AUTH_P_TOO_LONG;
        goto out;
    }
    if (!authutil_utf8_valid(msg, zlen) || !authutil_utf8_valid(cid, clen) ||
        !authutil_utf8_valid(pw, plen)) {
        res = AUTH_P_BAD_FORMAT;
        goto out;
    }
    if (zlen != 0 && (zlen != clen || memcmp(msg, cid, clen) != 0)) {
        res = AUTH_P_AUTHZ_MISMATCH;
        goto out;
    }
    if (clen >= usz || plen >= psz) {
        res = AUTH_P_TOO_LONG;
        goto out;
    }
    memcpy(user, cid, clen);
    user[clen] = '\0';
    memcpy(pass, pw, plen);
    pass[plen] = '\0';
    res = AUTH_P_OK;
out:
    explicit_bzero(msg, sizeof msg);
    return res;
}

enum auth_perr auth_login_decode(const char *b64, size_t n, size_t max, char *out, size_t osz)
{
    unsigned char field[AUTH_PASS_MAX + 3];     /* + 3: a full last group past max */
    enum auth_perr res;
    size_t m;
    ssize_t r;

    authutil_clear(out, osz);
    if (max > AUTH_PASS_MAX)
        max = AUTH_PASS_MAX;
    if (n > 4 * ((max + 2) / 3))
        return AUTH_P_TOO_LONG;
    r = auth_b64_decode(b64, n, field, sizeof field);
    if (r < 0) {
        res = AUTH_P_BAD_B64;
        goto done;
    }
    m = (size_t)r;
    if (m == 0 || memchr(field, '\0', m) != NULL) {
        res = AUTH_P_BAD_FORMAT;
    } else if (m > max) {
        res = AUTH_P_TOO_LONG;
    } else if (!authutil_utf8_valid(field, m)) {
        res = AUTH_P_BAD_FORMAT;
    } else if (m >= osz) {
        res = AUTH_P_TOO_LONG;
    } else {
        memcpy(out, field, m);
        out[m] = '\0';
        res = AUTH_P_OK;
    }
done:
    explicit_bzero(field, sizeof field);
    return res;
}

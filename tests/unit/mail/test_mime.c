/*
 * tests/unit/mail/test_mime.c - 8-bit to 7-bit MIME downgrade (mail/mime.c).
 *
 * Small samples are checked against exact expected output. Larger ones are described as a
 * tree (struct node): the test builds the input from the tree, converts it, then parses
 * the output with its own simple parser and decoders and checks that every part decodes
 * to exactly the content it had, that 7-bit parts are byte-identical, that header fields
 * other than Content-Transfer-Encoding are unchanged and in order, and that the output is
 * 7-bit with short lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/mime.h"
#include "util/buf.h"

/* ---- helpers ---- */

/* Convert into a fresh out; on anything but MIME_OK, check out is empty and free it. */
static enum mime_result conv(const char *in, size_t n, struct buf *out)
{
    char err[256];
    buf_init(out, 0);
    memset(err, 'x', sizeof err);
    enum mime_result r = mime_to_7bit(in, n, out, err, sizeof err);
    assert_non_null(memchr(err, '\0', sizeof err));
    if (r != MIME_OK)
        assert_true(strlen(err) > 0);
    if (r != MIME_OK) {
        assert_int_equal(out->len, 0);
        buf_free(out);          /* callers keep only a converted message */
    }
    return r;
}

static enum mime_result conv_s(const char *in, struct buf *out)
{
    return conv(in, strlen(in), out);
}

/* Output is 7-bit, has no line over 998 and converts as unchanged. */
static void check_7bit(const struct buf *out)
{
    size_t col = 0;
    for (size_t i = 0; i < out->len; i++) {
        unsigned char ch = (unsigned char)out->p[i];
        assert_true(ch != 0 && ch < 0x80);
        col = ch == '\n' ? 0 : col + 1;
        assert_true(col <= 998);
    }
    assert_false(mime_has_8bit(out->p, out->len));
    struct buf again;
    buf_init(&again, 0);
    assert_int_equal(mime_to_7bit(out->p, out->len, &again, NULL, 0), MIME_UNCHANGED);
    assert_int_equal(again.len, 0);
    buf_free(&again);
}

static void assert_out(const struct buf *out, const char *want)
{
    size_t wn = strlen(want);
    if (out->len != wn || memcmp(out->p, want, wn) != 0) {
        print_message("got:  [%.*s]\nwant: [%s]\n", (int)out->len, out->p, want);
        fail();
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;                  /* we only ever write upper case */
}

/*
 * Decode quoted-printable p[0..n) into o, checking the encoder's promises on the way:
 * lines of at most 76, no trailing white space, upper-case hex, no line starting with
 * "--", and only 7-bit printable literals.
 */
static void qp_decode(const char *p, size_t n, struct buf *o)
{
    size_t ls = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '\n')
            continue;
        /* line p[ls..i) */
        assert_true(i - ls <= 76);
        if (i > ls)
            assert_true(p[i - 1] != ' ' && p[i - 1] != '\t');
        if (i - ls >= 2)
            assert_false(p[ls] == '-' && p[ls + 1] == '-');
        bool soft = false;
        for (size_t k = ls; k < i; k++) {
            char c = p[k];
            if (c == '=') {
                if (k + 1 == i) {
                    soft = true;
                    break;
                }
                assert_true(k + 2 < i);
                int h = hexval(p[k + 1]), l = hexval(p[k + 2]);
                assert_true(h >= 0 && l >= 0);
                char d = (char)(h << 4 | l);
                assert_int_equal(buf_append(o, &d, 1), 0);
                k += 2;
            } else {
                assert_true(c == ' ' || c == '\t' || (c > ' ' && c < 0x7f));
                assert_int_equal(buf_append(o, &c, 1), 0);
            }
        }
        if (i < n && !soft)
            assert_int_equal(buf_append(o, "\n", 1), 0);
        if (i == n)
            assert_false(soft);
        ls = i + 1;
    }
}

/* Decode base64 p[0..n) into o; lines must be at most 76 and a multiple of 4 long. */
static void b64_decode(const char *p, size_t n, struct buf *o)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned acc = 0, bits = 0;
    size_t col = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            assert_true(col % 4 == 0);
            col = 0;
            continue;
        }
        col++;
        assert_true(col <= 76);
        if (p[i] == '=') {
            pad++;
            continue;
        }
        assert_int_equal(pad, 0);
        const char *q = strchr(alpha, p[i]);
        assert_true(q != NULL && p[i] != '\0');
        acc = acc << 6 | (unsigned)(q - alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char d = (char)(acc >> bits & 0xff);
            assert_int_equal(buf_append(o, &d, 1), 0);
        }
    }
    assert_true(col % 4 == 0);
}

/* s with each LF as CRLF: the wire form a base64 part encodes. */
static void crlf(const char *s, struct buf *o)
{
    for (; *s; s++) {
        if (*s == '\n')
            assert_int_equal(buf_append(o, "\r", 1), 0);
        assert_int_equal(buf_append(o, s, 1), 0);
    }
}

/* ---- message trees ---- */

enum expect {
    SAME,       /* copied byte for byte */
    QP,         /* leaf re-encoded quoted-printable */
    B64,        /* leaf re-encoded base64 */
    WALK,       /* multipart (boundary set) or message/rfc822 (one kid) walked */
};

struct node {
    const char *head;           /* header fields, each line ending in LF; no blank line */
    const char *body;           /* leaf body */
    const char *boundary;       /* multipart: the boundary (NULL: message/rfc822 or leaf) */
    const struct node *kid[4];  /* parts, or the embedded message */
    size_t nkid;
    enum expect exp;
};

static void build(const struct node *n, struct buf *b)
{
    assert_int_equal(buf_puts(b, n->head), 0);
    assert_int_equal(buf_puts(b, "\n"), 0);
    if (n->boundary != NULL) {
        assert_int_equal(buf_puts(b, "preamble\n"), 0);
        for (size_t i = 0; i < n->nkid; i++) {
            assert_int_equal(buf_printf(b, "--%s\n", n->boundary), 0);
            build(n->kid[i], b);
            assert_int_equal(buf_puts(b, "\n"), 0);
        }
        assert_int_equal(buf_printf(b, "--%s--\n", n->boundary), 0);
    } else if (n->nkid == 1) {
        build(n->kid[0], b);
    } else {
        assert_int_equal(buf_puts(b, n->body), 0);
    }
}

static bool is_cte_line(const char *p, size_t n)
{
    static const char name[] = "content-transfer-encoding:";
    return n >= sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0;
}

/* Header block without its CTE line(s) into o; the CTE value (if any) into cte. */
static void strip_cte(const char *p, size_t n, struct buf *o, char *cte, size_t csz)
{
    size_t ls = 0;
    cte[0] = '\0';
    while (ls < n) {
        const char *lf = memchr(p + ls, '\n', n - ls);
        size_t le = lf ? (size_t)(lf - p) + 1 : n;
        if (is_cte_line(p + ls, le - ls)) {
            size_t vs = ls + 26;
            while (vs < le && p[vs] == ' ')
                vs++;
            size_t vn = le - vs - (lf ? 1 : 0);
            assert_true(vn < csz);
            memcpy(cte, p + vs, vn);
            cte[vn] = '\0';
        } else {
            assert_int_equal(buf_append(o, p + ls, le - ls), 0);
        }
        ls = le;
    }
}

static void verify(const struct node *n, const char *o, size_t on)
{
    struct buf in, h_in, h_out, dec, want;
    char cte_in[64], cte_out[64];

    buf_init(&in, 0);
    build(n, &in);
    if (n->exp == SAME) {
        assert_int_equal(on, in.len);
        assert_memory_equal(o, in.p, on);
        buf_free(&in);
        return;
    }

    /* header block and body of the output entity */
    size_t hend, bstart;
    if (on > 0 && o[0] == '\n') {
        hend = 0;
    } else {
        const char *bl = memmem(o, on, "\n\n", 2);
        assert_non_null(bl);
        hend = (size_t)(bl - o) + 1;
    }
    bstart = hend + 1;
    buf_init(&h_in, 0);
    buf_init(&h_out, 0);
    buf_init(&dec, 0);
    buf_init(&want, 0);
    strip_cte(n->head, strlen(n->head), &h_in, cte_in, sizeof cte_in);
    strip_cte(o, hend, &h_out, cte_out, sizeof cte_out);
    assert_int_equal(h_in.len, h_out.len);
    if (h_in.len)
        assert_memory_equal(h_in.p, h_out.p, h_in.len);

    const char *b = o + bstart;
    size_t bn = on - bstart;
    switch (n->exp) {
    case QP:
        assert_string_equal(cte_out, "quoted-printable");
        qp_decode(b, bn, &dec);
        assert_int_equal(buf_puts(&want, n->body), 0);
        break;
    case B64:
        assert_string_equal(cte_out, "base64");
        b64_decode(b, bn, &dec);
        crlf(n->body, &want);
        break;
    case WALK: {
        if (strcasecmp(cte_in, "8bit") == 0)
            assert_string_equal(cte_out, "7bit");
        else
            assert_string_equal(cte_out, cte_in);
        if (n->boundary == NULL) {
            verify(n->kid[0], b, bn);
            break;
        }
        /* split at lines that are exactly "--B" or "--B--" */
        size_t blen = strlen(n->boundary), ls = 0, ps = SIZE_MAX, k = 0;
        bool closed = false;
        while (ls < bn && !closed) {
            const char *lf = memchr(b + ls, '\n', bn - ls);
            size_t le = lf ? (size_t)(lf - b) : bn;
            bool d = le - ls >= 2 + blen && b[ls] == '-' && b[ls + 1] == '-' &&
                memcmp(b + ls + 2, n->boundary, blen) == 0;
            if (d) {
                size_t rest = le - ls - 2 - blen;
                closed = rest == 2 && b[le - 2] == '-' && b[le - 1] == '-';
                assert_true(rest == 0 || closed);
                if (ps != SIZE_MAX) {
                    assert_true(k < n->nkid);
                    verify(n->kid[k++], b + ps, ls - 1 - ps);
                }
                ps = le + 1;
            }
            ls = le + 1;
        }
        assert_true(closed);
        assert_int_equal(k, n->nkid);
        break;
    }
    case SAME:
        break;
    }
    if (n->exp == QP || n->exp == B64) {
        assert_int_equal(dec.len, want.len);
        if (want.len)
            assert_memory_equal(dec.p, want.p, want.len);
    }
    buf_free(&in);
    buf_free(&h_in);
    buf_free(&h_out);
    buf_free(&dec);
    buf_free(&want);
}

/* Build, convert (expect MIME_OK), check the output is 7-bit and matches the tree. */
static void run_tree(const struct node *root)
{
    struct buf in, out;
    buf_init(&in, 0);
    build(root, &in);
    assert_true(mime_has_8bit(in.p, in.len));
    assert_int_equal(conv(in.p, in.len, &out), MIME_OK);
    check_7bit(&out);
    verify(root, out.p, out.len);
    buf_free(&in);
    buf_free(&out);
}

/* ---- tests ---- */

static void test_has_8bit(void **state)
{
    (void)state;
    assert_false(mime_has_8bit("", 0));
    assert_false(mime_has_8bit("plain ascii\n\t~\x7f", 15));
    assert_true(mime_has_8bit("caf\xc3\xa9", 5));
    assert_true(mime_has_8bit("a\0b", 3));
    assert_true(mime_has_8bit("\x80", 1));
}

static void test_unchanged(void **state)
{
    (void)state;
    static const char msg[] =
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        "--b\nContent-Type: text/plain\n\nhello\n--b--\n";
    struct buf out;
    char err[64];
    buf_init(&out, 0);
    assert_int_equal(buf_puts(&out, "keep"), 0);
    assert_int_equal(mime_to_7bit(msg, sizeof msg - 1, &out, err, sizeof err),
        MIME_UNCHANGED);
    assert_out(&out, "keep");
    assert_true(strlen(err) > 0);
    buf_free(&out);
    /* not MIME at all, but 7-bit: nothing to do either */
    assert_int_equal(conv_s("Subject: hi\n\nbody\n", &out), MIME_UNCHANGED);
    buf_free(&out);
}

static void test_qp_exact(void **state)
{
    (void)state;
    struct buf out;
    static const char msg[] =
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "Subject: x\n"
        "\n"
        "caf\xc3\xa9 =x  \n"
        "tab\t\n"
        "cr\r and nul \0 del \x7f\n"
        "\n"
        "-- \n"
        "last line without LF \t";
    assert_int_equal(conv(msg, sizeof msg - 1, &out), MIME_OK);
    assert_out(&out,
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n"
        "Subject: x\n"
        "\n"
        "caf=C3=A9 =3Dx =20\n"
        "tab=09\n"
        "cr=0D and nul =00 del =7F\n"
        "\n"
        "=2D-=20\n"
        "last line without LF =09");
    check_7bit(&out);
    buf_free(&out);
}

static void test_qp_added_cte(void **state)
{
    (void)state;
    struct buf out;
    /* no Content-Type: text/plain by default; the CTE goes after the last field */
    assert_int_equal(conv_s("MIME-Version: 1.0\nSubject: s\n\n\xe9t\xe9\n", &out), MIME_OK);
    assert_out(&out, "MIME-Version: 1.0\nSubject: s\n"
        "Content-Transfer-Encoding: quoted-printable\n\n=E9t=E9\n");
    buf_free(&out);
    /* an unparsable Content-Type is text/plain too (RFC 2045 5.2) */
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Type: garbage\n\n\xe9\n", &out),
        MIME_OK);
    assert_out(&out, "MIME-Version: 1.0\nContent-Type: garbage\n"
        "Content-Transfer-Encoding: quoted-printable\n\n=E9\n");
    buf_free(&out);
    /* folded CTE field is replaced whole, in place */
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-transfer-ENCODING:\n  8BIT (x)\n"
        "X: y\n\n\xe9\n", &out), MIME_OK);
    assert_out(&out, "MIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n"
        "X: y\n\n=E9\n");
    buf_free(&out);
}

static void test_qp_long_lines(void **state)
{
    (void)state;
    struct buf in, out, want;
    buf_init(&in, 0);
    buf_init(&want, 0);
    assert_int_equal(buf_puts(&in, "MIME-Version: 1.0\n\n"), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(buf_puts(&in, "a"), 0);
    assert_int_equal(buf_puts(&in, "\xff\n"), 0);
    assert_int_equal(conv(in.p, in.len, &out), MIME_OK);
    /* 75 + "=", 75 + "=", then 50 and the 3-character =FF */
    assert_int_equal(buf_puts(&want, "MIME-Version: 1.0\n"
        "Content-Transfer-Encoding: quoted-printable\n\n"), 0);
    for (int l = 0; l < 3; l++) {
        for (int i = 0; i < (l < 2 ? 75 : 50); i++)
            assert_int_equal(buf_puts(&want, "a"), 0);
        assert_int_equal(buf_puts(&want, l < 2 ? "=\n" : "=FF\n"), 0);
    }
    assert_int_equal(out.len, want.len);
    assert_memory_equal(out.p, want.p, want.len);
    check_7bit(&out);
    buf_free(&in);
    buf_free(&out);
    buf_free(&want);

    /* exactly 76 characters on a last segment need no soft break; 77 do, and then a
     * line that goes on holds at most 75 and its '=' */
    buf_init(&in, 0);
    assert_int_equal(buf_puts(&in, "MIME-Version: 1.0\n\n\xe9"), 0);
    for (int i = 0; i < 73; i++)
        assert_int_equal(buf_puts(&in, "b"), 0);
    assert_int_equal(buf_puts(&in, "\n\xe9"), 0);
    for (int i = 0; i < 74; i++)
        assert_int_equal(buf_puts(&in, "b"), 0);
    assert_int_equal(buf_puts(&in, "\n"), 0);
    assert_int_equal(conv(in.p, in.len, &out), MIME_OK);
    const char *body = strstr(buf_cstr(&out), "\n\n") + 2;
    const char *l1 = strchr(body, '\n');
    assert_int_equal(l1 - body, 76);
    const char *l2 = strchr(l1 + 1, '\n');
    assert_int_equal(l2 - l1 - 1, 76);
    assert_int_equal(l2[-1], '=');
    assert_string_equal(l2 + 1, "bb\n");
    buf_free(&in);
    buf_free(&out);

    /* an =XX that does not fit moves whole to the next line; '-' after a soft break */
    buf_init(&in, 0);
    assert_int_equal(buf_puts(&in, "MIME-Version: 1.0\n\n"), 0);
    for (int i = 0; i < 74; i++)
        assert_int_equal(buf_puts(&in, "c"), 0);
    assert_int_equal(buf_puts(&in, "\xe9"), 0);
    for (int i = 0; i < 72; i++)
        assert_int_equal(buf_puts(&in, "d"), 0);
    assert_int_equal(buf_puts(&in, "--boundary\n"), 0);
    assert_int_equal(conv(in.p, in.len, &out), MIME_OK);
    body = strstr(buf_cstr(&out), "\n\n") + 2;
    assert_memory_equal(body + 74, "=\n=E9", 5);
    assert_memory_equal(body + 74 + 2 + 75, "=\n=2D-boundary\n", 15);
    check_7bit(&out);
    buf_free(&in);
    buf_free(&out);
}

static void test_b64_exact(void **state)
{
    (void)state;
    struct buf out;
    static const char msg[] =
        "MIME-Version: 1.0\n"
        "Content-Type: image/jpeg\n"
        "\n"
        "\xff\xd8\xff\xe0\nJFIF\0\x01\n";
    assert_int_equal(conv(msg, sizeof msg - 1, &out), MIME_OK);
    /* the encoded octets are the wire form: LF is CRLF */
    assert_out(&out, "MIME-Version: 1.0\nContent-Type: image/jpeg\n"
        "Content-Transfer-Encoding: base64\n\n/9j/4A0KSkZJRgABDQo=\n");
    check_7bit(&out);
    buf_free(&out);

    /* in a part: no LF of our own before the delimiter */
    static const char mp[] =
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n"
        "--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n"
        "\xff\xd8\xff\xe0\n--x--\n";
    assert_int_equal(conv(mp, sizeof mp - 1, &out), MIME_OK);
    assert_out(&out, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n"
        "--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
        "/9j/4A==\n--x--\n");
    buf_free(&out);
}

static void test_b64_long(void **state)
{
    (void)state;
    char body[300];
    for (size_t i = 0; i < sizeof body - 1; i++)
        body[i] = (char)(i % 13 == 12 ? '\n' : 0x80 + i % 100);
    body[sizeof body - 1] = '\0';
    const struct node leaf = { "Content-Type: application/x-thing\n", body, NULL, {0}, 0, B64 };
    const struct node leaf2 = { "Content-Type: image/png\n", "\x89PNG", NULL, {0}, 0, B64 };
    const struct node exact57 = { "Content-Type: image/png\n",
        "\x89PNG45678901234567890123456789012345678901234567890123456", NULL, {0}, 0, B64 };
    const struct node root = { "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=q\n",
        NULL, "q", { &leaf, &leaf2, &exact57 }, 3, WALK };
    run_tree(&root);
}

static void test_multipart_mixed(void **state)
{
    (void)state;
    const struct node p7 = { "Content-Type: text/plain; charset=us-ascii\n"
        "Content-Transfer-Encoding: 7bit\n", "plain text\n  with = and trailing  \n",
        NULL, {0}, 0, SAME };
    const struct node p8 = { "Content-Type: text/plain; charset=iso-8859-1\n"
        "Content-Disposition: inline\nContent-Transfer-Encoding: 8bit\nX-Last: 1\n",
        "d\xe9j\xe0 vu\nline two  \n\n", NULL, {0}, 0, QP };
    const struct node pbin = { "Content-Type: application/pdf; name=\"a.pdf\"\n"
        "Content-Transfer-Encoding: 8bit\n", "%PDF-1.4\n\xe2\xe3\xcf\xd3\n", NULL, {0}, 0,
        B64 };
    const struct node pb64 = { "Content-Type: image/gif\nContent-Transfer-Encoding: base64\n",
        "R0lGODlhAQABAAAAACw=\n", NULL, {0}, 0, SAME };
    const struct node root = { "From: a@example.org\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"==b1==\"\nSubject: test\n", NULL,
        "==b1==", { &p7, &p8, &pbin, &pb64 }, 4, WALK };
    run_tree(&root);
}

static void test_nested_alternative(void **state)
{
    (void)state;
    const struct node t = { "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n", "Gr\xc3\xbc\xc3\x9f" "e\n", NULL, {0}, 0, QP };
    const struct node h = { "Content-Type: text/html; charset=utf-8\n",
        "<p>Gr\xc3\xbc\xc3\x9f" "e</p>\n", NULL, {0}, 0, QP };
    const struct node alt = { "Content-Type: multipart/alternative; boundary=alt\n"
        "Content-Transfer-Encoding: 8bit\n", NULL, "alt", { &t, &h }, 2, WALK };
    const struct node att = { "Content-Type: text/plain\n", "ascii attachment\n", NULL, {0},
        0, SAME };
    const struct node mixed = { "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=mix\n", NULL, "mix", { &alt, &att }, 2,
        WALK };
    run_tree(&mixed);
}

static void test_rfc822(void **state)
{
    (void)state;
    const struct node inner_t = { "Content-Type: text/plain; charset=utf-8\n",
        "\xe2\x82\xac 100\n", NULL, {0}, 0, QP };
    const struct node inner_b = { "Content-Type: application/octet-stream\n",
        "\x01\x02\xfe\xff", NULL, {0}, 0, B64 };
    const struct node inner = { "From: x@example.org\nSubject: fwd\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=in\n", NULL, "in", { &inner_t, &inner_b }, 2,
        WALK };
    const struct node msg = { "Content-Type: message/rfc822\n"
        "Content-Transfer-Encoding: 8bit\n", NULL, NULL, { &inner }, 1, WALK };
    const struct node note = { "Content-Type: text/plain\n", "see attached\n", NULL, {0}, 0,
        SAME };
    const struct node root = { "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=out\n", NULL, "out", { &note, &msg }, 2,
        WALK };
    run_tree(&root);

    /* single-part embedded message at the top level */
    const struct node leaf = { "MIME-Version: 1.0\nSubject: inner\n", "\xe9\n", NULL, {0}, 0,
        QP };
    const struct node top = { "MIME-Version: 1.0\nContent-Type: message/rfc822\n", NULL, NULL,
        { &leaf }, 1, WALK };
    run_tree(&top);
}

static void test_digest(void **state)
{
    (void)state;
    /* parts of multipart/digest without Content-Type are message/rfc822 */
    const struct node m1 = { "MIME-Version: 1.0\nSubject: one\n", "\xe9t\xe9\n", NULL, {0}, 0,
        QP };
    const struct node e1 = { "", NULL, NULL, { &m1 }, 1, WALK };
    const struct node m2 = { "Subject: two\n", "ascii\n", NULL, {0}, 0, SAME };
    const struct node root = { "MIME-Version: 1.0\nContent-Type: multipart/digest; boundary=d\n",
        NULL, "d", { &e1, &m2 }, 2, WALK };
    run_tree(&root);
}

static void test_folded_content_type(void **state)
{
    (void)state;
    const struct node p = { "Content-Type: text/plain\n", "na\xefve\n", NULL, {0}, 0, QP };
    const struct node r1 = { "MIME-Version: 1.0\nContent-Type: multipart/mixed;\n"
        "\tcharset=\"x;y\" (a comment; boundary=wrong);\n"
        "  BOUNDARY=\"=_quoted b\\\"oundary\"\n", NULL, "=_quoted b\"oundary", { &p }, 1,
        WALK };
    run_tree(&r1);
    const struct node r2 = { "MIME-Version: 1.0\ncontent-type:Multipart/Related ;\n"
        " type=text/html ;  boundary =\n unquoted.b-1 (tail)\n", NULL, "unquoted.b-1", { &p },
        1, WALK };
    run_tree(&r2);
    /* a junk parameter before the boundary is skipped */
    const struct node r3 = { "MIME-Version: 1.0\nContent-Type: multipart/mixed; junk junk;"
        " boundary=\"b3\"\n", NULL, "b3", { &p }, 1, WALK };
    run_tree(&r3);
}

static void test_delimiter_leniency(void **state)
{
    (void)state;
    struct buf out;
    /* transport padding after delimiters; no close delimiter at all */
    static const char msg[] =
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        "--b \t\nContent-Type: text/plain\n\n\xe9\n--b\t\n\nascii\n";
    assert_int_equal(conv(msg, sizeof msg - 1, &out), MIME_OK);
    assert_out(&out, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        "--b \t\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
        "=E9\n--b\t\n\nascii\n");
    check_7bit(&out);
    buf_free(&out);

    /* empty parts, a delimiter right after the headers, trailing white space of a part */
    static const char msg2[] =
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        "--b\n--b\n\n\xe9 \n--b--";
    assert_int_equal(conv(msg2, sizeof msg2 - 1, &out), MIME_OK);
    assert_out(&out, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        "--b\n--b\nContent-Transfer-Encoding: quoted-printable\n\n=E9=20\n--b--");
    buf_free(&out);
}

static void test_qp_boundary_safe(void **state)
{
    (void)state;
    struct buf out;
    /* "--\xe9x" is no delimiter for boundary "=E9x", but its naive encoding would be */
    static const char msg[] =
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"=E9x\"\n\n"
        "--=E9x\n\n--\xe9x\n- one\n--\n--=E9x--\n";
    assert_int_equal(conv(msg, sizeof msg - 1, &out), MIME_OK);
    assert_out(&out, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"=E9x\"\n\n"
        "--=E9x\nContent-Transfer-Encoding: quoted-printable\n\n=2D-=E9x\n- one\n=2D-\n"
        "--=E9x--\n");
    check_7bit(&out);
    buf_free(&out);
    const struct node p = { "", "--\xe9x\n--=E9y\n-\n", NULL, {0}, 0, QP };
    const struct node root = { "MIME-Version: 1.0\nContent-Type: multipart/mixed; "
        "boundary=\"=E9x\"\n", NULL, "=E9x", { &p }, 1, WALK };
    run_tree(&root);
}

static void test_preamble_epilogue(void **state)
{
    (void)state;
    struct buf out;
    /* 8-bit preamble and epilogue are dropped; their line ends stay */
    static const char msg[] =
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        "pr\xe9\x61mble\n--b\n\nascii\n--b--\n\xe9pilogue\n";
    assert_int_equal(conv(msg, sizeof msg - 1, &out), MIME_OK);
    assert_out(&out, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        "\n--b\n\nascii\n--b--\n");
    check_7bit(&out);
    buf_free(&out);
    /* a 7-bit preamble and epilogue are kept */
    static const char msg2[] =
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        "This is MIME.\n--b\n\n\xe9\n--b--\nbye\n";
    assert_int_equal(conv(msg2, sizeof msg2 - 1, &out), MIME_OK);
    assert_out(&out, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        "This is MIME.\n--b\nContent-Transfer-Encoding: quoted-printable\n\n=E9\n--b--\n"
        "bye\n");
    buf_free(&out);
}

static void test_not_mime(void **state)
{
    (void)state;
    struct buf out;
    char err[128];
    static const char msg[] = "Subject: hi\nContent-Type: text/plain\n\nd\xe9j\xe0\n";
    buf_init(&out, 0);
    assert_int_equal(mime_to_7bit(msg, sizeof msg - 1, &out, err, sizeof err), MIME_NOT_MIME);
    assert_string_equal(err,
        "message has 8-bit content but is not MIME; the next hop does not accept 8-bit");
    assert_int_equal(out.len, 0);
    buf_free(&out);
    /* an embedded message needs MIME-Version too */
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Type: message/rfc822\n\n"
        "Subject: inner\n\n\xe9\n", &out), MIME_NOT_MIME);
}

static void test_8bit_headers(void **state)
{
    (void)state;
    struct buf out;
    assert_int_equal(conv_s("MIME-Version: 1.0\nSubject: caf\xc3\xa9\n\nascii\n", &out),
        MIME_8BIT_HEADERS);
    /* checked before MIME-Version */
    assert_int_equal(conv_s("Subject: caf\xc3\xa9\n\n\xe9\n", &out), MIME_8BIT_HEADERS);
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        "--b\nContent-Type: text/plain; name=\"\xe9.txt\"\n\nascii\n--b--\n", &out),
        MIME_8BIT_HEADERS);
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Type: message/rfc822\n\n"
        "MIME-Version: 1.0\nSubject: \xe9\n\nx\n", &out), MIME_8BIT_HEADERS);
    /* a header block with no blank line after it is all header */
    assert_int_equal(conv_s("MIME-Version: 1.0\nX: \xe9", &out), MIME_8BIT_HEADERS);
}

static void test_bad(void **state)
{
    (void)state;
    struct buf out;
    /* multipart without a boundary, with an empty one, with two */
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Type: multipart/mixed\n\n"
        "--b\n\n\xe9\n--b--\n", &out), MIME_BAD);
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"\"\n"
        "\n--\n\n\xe9\n----\n", &out), MIME_BAD);
    assert_int_equal(conv_s("MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=a; boundary=b\n\n--b\n\n\xe9\n", &out),
        MIME_BAD);
    /* a boundary that never occurs */
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=zz\n\n"
        "--b\n\n\xe9\n--b--\n", &out), MIME_BAD);
    /* 8-bit inside an already encoded body, or an unknown encoding */
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\n"
        "\xe9\n", &out), MIME_BAD);
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Transfer-Encoding: Quoted-Printable\n"
        "\n\xe9\n", &out), MIME_BAD);
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Transfer-Encoding: x-uuencode\n\n"
        "\xe9\n", &out), MIME_BAD);
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n"
        "Content-Transfer-Encoding: base64\n\n--b\n\n\xe9\n--b--\n", &out), MIME_BAD);
    /* duplicate fields are ambiguous */
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Type: text/plain\n"
        "Content-Type: image/png\n\n\xe9\n", &out), MIME_BAD);
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\n"
        "Content-Transfer-Encoding: base64\n\n\xe9\n", &out), MIME_BAD);
    /* message/partial must be 7-bit and cannot be encoded */
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Type: message/partial; id=x; "
        "number=1\n\n\xe9\n", &out), MIME_BAD);
    /* 8-bit junk after a boundary on a delimiter line */
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        "--b\xe9\n\nx\n--b--\n", &out), MIME_BAD);
    /* but message/global may be base64 (RFC 6532) */
    assert_int_equal(conv_s("MIME-Version: 1.0\nContent-Type: message/global\n\n"
        "Subject: \xe9\n\nx\n", &out), MIME_OK);
    assert_non_null(strstr(buf_cstr(&out), "Content-Transfer-Encoding: base64\n\n"));
    buf_free(&out);
}

/* depth nested multiparts with an 8-bit leaf at the bottom. */
static void nested(struct buf *b, int depth)
{
    assert_int_equal(buf_puts(b, "MIME-Version: 1.0\n"), 0);
    for (int i = 0; i < depth; i++)
        assert_int_equal(buf_printf(b,
            "Content-Type: multipart/mixed; boundary=b%d.\n\n--b%d.\n", i, i), 0);
    assert_int_equal(buf_puts(b, "Content-Type: text/plain\n\n\xe9\n"), 0);
    for (int i = depth - 1; i >= 0; i--)
        assert_int_equal(buf_printf(b, "--b%d.--\n", i), 0);
}

static void test_depth(void **state)
{
    (void)state;
    struct buf in, out;
    buf_init(&in, 0);
    nested(&in, MIME_MAX_DEPTH);
    assert_int_equal(conv(in.p, in.len, &out), MIME_OK);
    check_7bit(&out);
    assert_non_null(strstr(buf_cstr(&out),
        "Content-Transfer-Encoding: quoted-printable\n\n=E9\n--b31.--\n"));
    buf_free(&out);
    buf_free(&in);

    buf_init(&in, 0);
    nested(&in, MIME_MAX_DEPTH + 1);
    assert_int_equal(conv(in.p, in.len, &out), MIME_TOO_DEEP);
    buf_free(&in);

    /* message/rfc822 levels count as well */
    buf_init(&in, 0);
    for (int i = 0; i <= MIME_MAX_DEPTH; i++)
        assert_int_equal(buf_puts(&in, "MIME-Version: 1.0\nContent-Type: message/rfc822\n\n"),
            0);
    assert_int_equal(buf_puts(&in, "MIME-Version: 1.0\n\n\xe9\n"), 0);
    assert_int_equal(conv(in.p, in.len, &out), MIME_TOO_DEEP);
    buf_free(&in);
}

static void test_too_big(void **state)
{
    (void)state;
    static const char msg[] = "MIME-Version: 1.0\n\n\xe9\xe9\xe9\n";
    struct buf out;
    char err[80];
    /* the whole output is 18 + 44 + 1 + 10 = 73 bytes */
    buf_init(&out, 80);
    assert_int_equal(buf_puts(&out, "abcdefgh"), 0);
    assert_int_equal(mime_to_7bit(msg, sizeof msg - 1, &out, err, sizeof err), MIME_TOO_BIG);
    assert_out(&out, "abcdefgh");
    buf_free(&out);
    buf_init(&out, 81);
    assert_int_equal(buf_puts(&out, "abcdefgh"), 0);
    assert_int_equal(mime_to_7bit(msg, sizeof msg - 1, &out, err, sizeof err), MIME_OK);
    assert_int_equal(out.len, 81);
    buf_free(&out);
}

static void test_result_str(void **state)
{
    (void)state;
    for (int i = MIME_OK; i <= MIME_TOO_BIG; i++) {
        const char *s = mime_result_str((enum mime_result)i);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        for (int j = MIME_OK; j < i; j++)
            assert_string_not_equal(s, mime_result_str((enum mime_result)j));
    }
}

/* A few megabytes in many parts and long lines convert quickly (no quadratic rescans). */
static void test_large(void **state)
{
    (void)state;
    struct buf in, out;
    buf_init(&in, 0);
    assert_int_equal(buf_puts(&in, "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=big\n\n"), 0);
    for (int i = 0; i < 20000; i++) {
        assert_int_equal(buf_printf(&in, "--big\nContent-Type: %s\n\n",
            i % 2 ? "text/plain" : "application/octet-stream"), 0);
        for (int k = 0; k < 10; k++)
            assert_int_equal(buf_puts(&in, "0123456789\xe9 abcdefghijklmnop\n"), 0);
    }
    for (int i = 0; i < 1000000; i++)
        assert_int_equal(buf_puts(&in, "\xe9"), 0);
    assert_int_equal(buf_puts(&in, "\n--big--\n"), 0);
    clock_t t0 = clock();
    assert_int_equal(conv(in.p, in.len, &out), MIME_OK);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 5.0);
    check_7bit(&out);
    buf_free(&in);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_has_8bit),
        cmocka_unit_test(test_unchanged),
        cmocka_unit_test(test_qp_exact),
        cmocka_unit_test(test_qp_added_cte),
        cmocka_unit_test(test_qp_long_lines),
        cmocka_unit_test(test_b64_exact),
        cmocka_unit_test(test_b64_long),
        cmocka_unit_test(test_multipart_mixed),
        cmocka_unit_test(test_nested_alternative),
        cmocka_unit_test(test_rfc822),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_folded_content_type),
        cmocka_unit_test(test_delimiter_leniency),
        cmocka_unit_test(test_qp_boundary_safe),
        cmocka_unit_test(test_preamble_epilogue),
        cmocka_unit_test(test_not_mime),
        cmocka_unit_test(test_8bit_headers),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_result_str),
        cmocka_unit_test(test_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

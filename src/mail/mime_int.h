/*
 * mail/mime_int.h - what mime.c and mime_head.c share: an entity as the header lexer sees
 * it. Internal to src/mail/mime*.c; mail/mime.h is the public surface.
 *
 * Owns:  struct ent (byte ranges of one entity and the facts its header fields give).
 * Never: is included outside the MIME modules.
 * Limits: MIME_BOUNDARY_MAX.
 */
#ifndef POSTEL_MAIL_MIME_INT_H
#define POSTEL_MAIL_MIME_INT_H

#include <stdbool.h>
#include <stddef.h>

#define MIME_BOUNDARY_MAX 256   /* octets; RFC 2046 5.1.1 allows 70 */

enum kind {
    K_TEXT,         /* text/..., no Content-Type, or an unparsable one: quoted-printable */
    K_BINARY,       /* any other leaf: base64 */
    K_MULTIPART,
    K_RFC822,
    K_MSG_OTHER,    /* message/partial, message/external-body, ...: must stay 7-bit */
};

enum cte {
    CTE_IDENTITY,   /* absent, empty, 7bit, 8bit or binary: the body is the content */
    CTE_QP,
    CTE_BASE64,
    CTE_OTHER,      /* x-uuencode and friends */
};

/* One entity: header block [s, hend), blank line [hend, bstart), body [bstart, e). */
struct ent {
    size_t s, hend, bstart, e;
    size_t ct_s, ct_e;          /* value of the (first) Content-Type field */
    size_t cte_s, cte_e;        /* whole Content-Transfer-Encoding field, with its LFs */
    size_t cte_vs, cte_ve;      /* its value */
    unsigned nct, ncte;         /* how many of each field */
    bool mime_version;
    enum kind kind;
    enum cte cte;
    bool cte_rewrite;           /* the CTE field says 8bit or binary */
    bool digest;                /* multipart/digest: parts default to message/rfc822 */
    bool bdup;                  /* more than one boundary parameter */
    bool blong;                 /* boundary over MIME_BOUNDARY_MAX */
    size_t blen;                /* 0: no boundary parameter */
    char boundary[MIME_BOUNDARY_MAX];
};

/*
 * Split m[s..e) (one entity of the message m) into header block and body and note in *en
 * the fields that matter (where Content-Type and Content-Transfer-Encoding are, how many of
 * each, MIME-Version). A header block ends at the first empty line; without one, the whole
 * entity is header.
 */
void mime_parse_head(struct ent *en, const char *m, size_t s, size_t e);

/*
 * Fill en->kind, digest and the boundary (blen, bdup, blong) from the Content-Type value
 * m[s..e); an unparsable value makes the entity text (RFC 2045 5.2).
 */
void mime_parse_content_type(struct ent *en, const char *m, size_t s, size_t e);

/* Set en->cte (and cte_rewrite) from the Content-Transfer-Encoding value m[s..e). */
void mime_parse_cte(struct ent *en, const char *m, size_t s, size_t e);

#endif

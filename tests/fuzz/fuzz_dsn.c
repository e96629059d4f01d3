/*
 * tests/fuzz/fuzz_dsn.c - the report builder on arbitrary peer strings and messages: it must
 * not crash, and whatever it writes must keep its shape: known header fields only, the
 * boundary on delimiter lines only, only known fields in the delivery-status part, and no
 * line over 998 octets outside the returned message.
 *
 * Input: flags (RET, SMTPUTF8, with original), four action bytes, then NUL-separated
 * strings (sender, envid, helo, seed, then addr orcpt status remote diagnostic for each of
 * up to four recipients); whatever follows the last string is the original message.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dsn.h"

#define NSTR 24

static size_t line_end(const char *p, size_t n, size_t i)
{
    const char *nl = memchr(p + i, '\n', n - i);
    return nl ? (size_t)(nl - p) : n;
}

static bool known(const char *p, size_t n, const char *const *names)
{
    for (; *names != NULL; names++) {
        size_t k = strlen(*names);
        if (n > k && memcmp(p, *names, k) == 0 && p[k] == ':')
            return true;
    }
    return false;
}

static void check(const char *p, size_t n, bool with_orig)
{
    static const char *const top[] = { "From", "To", "Subject", "Date", "Message-ID",
        "Auto-Submitted", "MIME-Version", "Content-Type", "Content-Transfer-Encoding", NULL };
    static const char *const ds[] = { "Original-Envelope-Id", "Reporting-MTA",
        "Received-From-MTA", "Arrival-Date", "X-Postel-Queue-ID", "Original-Recipient",
        "Final-Recipient", "Action", "Status", "Remote-MTA", "Diagnostic-Code",
        "Last-Attempt-Date", "Will-Retry-Until", "Content-Description", "Content-Type",
        "Content-Transfer-Encoding", NULL };
    /* the Content-Type continuation: no peer text can hold a TAB or start a line */
    const char *b = memmem(p, n, "\n\tboundary=\"", 12);
    if (b == NULL)
        abort();
    b += 12;
    const char *q = memchr(b, '"', n - (size_t)(b - p));
    if (q == NULL || q - b > 70)
        abort();
    size_t bl = (size_t)(q - b);

    size_t delims = 0, closes = 0;
    bool in_top = true;
    for (size_t i = 0; i < n; i = line_end(p, n, i) + 1) {
        size_t e = line_end(p, n, i), len = e - i;
        bool starts = len >= bl + 2 && memcmp(p + i, "--", 2) == 0
            && memcmp(p + i + 2, b, bl) == 0;
        bool is_delim = starts && len == bl + 2;
        bool is_close = starts && len == bl + 4 && memcmp(p + i + bl + 2, "--", 2) == 0;
        bool in_orig = with_orig && delims == 3;
        if (starts && !is_delim && !is_close)
            abort();            /* a line that a sloppy parser would take for a delimiter */
        delims += is_delim;
        closes += is_close;
        if (!in_orig && len > 998)
            abort();
        if (len == 0) {
            in_top = false;
            continue;
        }
        if (in_top && p[i] != ' ' && p[i] != '\t' && !known(p + i, len, top))
            abort();
        /* the delivery-status part: known fields and folded continuations only */
        if (delims == 2 && !starts && p[i] != ' ' && p[i] != '\t' && !known(p + i, len, ds))
            abort();
    }
    if (delims != (with_orig ? 3u : 2u) || closes != 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    const char *s[NSTR] = { 0 };
    char *copy = malloc(size + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    size_t pos = 5, ns = 0;
    while (ns < NSTR && pos < size) {
        size_t k = strlen(copy + pos);
        s[ns++] = k ? copy + pos : NULL;
        pos += k + 1;
    }
    const char *orig = pos < size ? copy + pos : "";
    size_t olen = pos < size ? size - pos : 0;

    struct dsn_rcpt rc[4];
    memset(rc, 0, sizeof rc);
    for (size_t i = 0; i < 4; i++) {
        rc[i].addr = s[4 + i * 5] ? s[4 + i * 5] : "r@example.org";
        rc[i].orcpt = s[5 + i * 5];
        rc[i].status = s[6 + i * 5];
        rc[i].remote_mta = s[7 + i * 5];
        rc[i].diagnostic = s[8 + i * 5];
        rc[i].action = (enum dsn_action)(data[1 + i] % 5);
        rc[i].last_attempt = data[1 + i] & 0x80 ? 1767225600 : 0;
        rc[i].will_retry_until = data[1 + i] & 0x40 ? 1767600000 : 0;
    }
    struct dsn_msg m = {
        .reporting_mta = "mail.example.net", .queue_id = "Q1", .envid = s[1],
        .sender = s[0] ? s[0] : "", .arrival = 1767225600, .client_helo = s[2],
        .client_addr = "192.0.2.7", .ret = data[0] % 3, .rcpts = rc,
        .nrcpt = 1 + (data[0] >> 2) % 4, .original = data[0] & 0x10 ? orig : NULL,
        .original_len = olen, .now = 1767232800, .boundary_seed = s[3],
        .smtputf8 = (data[0] & 0x20) != 0,
    };
    struct buf b;
    buf_init(&b, data[0] & 0x40 ? 4096 : 0);
    int r = dsn_build(&m, &b);
    if (r == 0)
        check(b.p, b.len, m.original != NULL);
    else if (m.sender[0] != '\0' && b.max == SIZE_MAX)
        abort();                /* only an empty sender or the cap may fail */
    buf_free(&b);
    free(copy);
    return 0;
}

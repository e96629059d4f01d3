/*
 * cli/addrlist.h - RFC 5322 address lists, as sendmail -t and the command line need them.
 *
 * Owns:  tokenising a header value or an argument (atoms, quoted strings, nested comments,
 *        domain literals, specials, folding white space), display names, groups, obsolete
 *        source routes; the result is the bare addr-specs in order.
 * Never: does I/O or validates an address as an SMTP path: the daemon parses the paths
 *        it is given and rejects what is wrong, with the same limits as for SMTP.
 * Limits: ADDRLIST_MAX addresses in one list, each at most ADDRLIST_ADDR_MAX octets.
 */
#ifndef POSTEL_CLI_ADDRLIST_H
#define POSTEL_CLI_ADDRLIST_H

#include <stddef.h>

#define ADDRLIST_MAX      10000
#define ADDRLIST_ADDR_MAX 2048

struct addrlist {
    char **addrs;               /* addr-specs, e.g. "a@b.example", "\"odd one\"@b" */
    size_t n;
};

/*
 * Parse the address list s (length n, may hold folded lines: CR and LF count as white
 * space) and append each address it names to out, in order. A display name, comments,
 * a group's name and its ":" ";" and a source route ("<@a,@b:x@y>") are dropped; an empty
 * "<>" adds nothing. Quoted local parts keep their quotes. Returns 0, or -1 with the reason
 * in err (unbalanced quote, comment, angle or bracket; a control octet; a limit): out
 * then keeps the addresses found before the error.
 */
int addrlist_parse(const char *s, size_t n, struct addrlist *out, char *err, size_t errsz);

/* Free the addresses and the array; out is left empty and reusable. */
void addrlist_free(struct addrlist *out);

#endif

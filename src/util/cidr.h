/*
 * util/cidr.h - address/prefix lists such as relay_networks = 127.0.0.0/8 ::1/128.
 */
#ifndef POSTEL_UTIL_CIDR_H
#define POSTEL_UTIL_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
    int family;             /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned bits;
};

struct cidr_list {
    struct cidr *v;
    size_t n;
};

/* Parse "192.0.2.0/24", "2001:db8::/32" or a bare address. Returns 0 or -1. */
int cidr_parse(const char *s, struct cidr *out);
/* Append to a list. */
void cidr_list_add(struct cidr_list *l, const struct cidr *c);
void cidr_list_free(struct cidr_list *l);
/* Does the address match any entry? IPv4-mapped IPv6 addresses match IPv4 entries. */
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);
/* Format an entry as text into out (size osz). Returns out. */
char *cidr_format(const struct cidr *c, char *out, size_t osz);

#endif

/*
 * Client addresses for per-IP limits and whitelists: IPv4 and IPv6 as 16 bytes, CIDR ranges,
 * and the client behind trusted proxies from X-Forwarded-For. Pure functions.
 */
#ifndef CRMD_API_LIMIT_ADDR_H
#define CRMD_API_LIMIT_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An address range; addresses are 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d). */
typedef struct rl_cidr {
    uint8_t addr[16];
    uint8_t bits; /* prefix length over the 128-bit form */
} rl_cidr_t;

/* Parses an IPv4 or IPv6 address ("1.2.3.4", "::1"); with allow_port also "1.2.3.4:80" and
 * "[::1]:80". Surrounding blanks are skipped. */
bool rl_ip_parse(const char *s, size_t n, bool allow_port, uint8_t out[16]);

/* Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a host range). */
bool rl_cidr_parse(const char *s, size_t n, rl_cidr_t *out);

/* Parses a comma list of CIDRs into out (at most max); returns the count, or -1 on a bad item. */
int rl_cidr_list_parse(const char *list, rl_cidr_t *out, int max);

/* Whether ip is inside any of the n ranges. */
bool rl_cidr_match(const rl_cidr_t *ranges, int n, const uint8_t ip[16]);

/* The socket peer (family AF_INET with 4 bytes, or AF_INET6) as a 16-byte address. */
void rl_ip_from_peer(int family, const uint8_t *addr, uint8_t out[16]);

/* The client address: the peer, unless the peer is a trusted proxy; then the first address of
 * X-Forwarded-For, scanning from the right, that is not trusted (the leftmost when all are;
 * the last good one when an entry is malformed). */
void rl_client_ip(const uint8_t peer[16], const char *xff, size_t xff_len, const rl_cidr_t *trusted,
                  int ntrusted, uint8_t out[16]);

#endif

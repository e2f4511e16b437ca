/*
 * UTF-8 well-formedness (RFC 3629): no overlong forms, no surrogates (U+D800..U+DFFF), nothing
 * above U+10FFFF, no truncated or stray continuation bytes. PostgreSQL refuses such text with an
 * error, so every text value from a request is checked here first, at the edge.
 */
#ifndef CRMD_CORE_UTF8_H
#define CRMD_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (2-4) of the well-formed multi-byte sequence at s (n bytes left), or 0 when it is
 * ill-formed; then *bad is the length of its maximal ill-formed prefix (the Unicode "maximal
 * subpart" practice a replacing decoder follows: C0 80 is two bad bytes, a truncated E2 82
 * one). s[0] is not ASCII. */
size_t utf8_seq_check(const unsigned char *s, size_t n, size_t *bad);

/* Length (1-4) of the well-formed sequence at p with avail bytes left, or 0. */
size_t utf8_seq_len(const unsigned char *p, size_t avail);

/* Whether s[0..n) is well-formed UTF-8 (NUL bytes are well-formed: callers refuse them). */
bool utf8_valid(const char *s, size_t n);

#endif

/* Small shared helpers: branch hints, array sizes, and allocation that aborts on failure. */
#ifndef CRMD_CORE_COMMON_H
#define CRMD_CORE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define likely(x)    __builtin_expect(!!(x), 1)
#define unlikely(x)  __builtin_expect(!!(x), 0)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The struct of type that holds member at ptr (intrusive lists and rings). */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define MIN(a, b)                       ((a) < (b) ? (a) : (b))
#define MAX(a, b)                       ((a) > (b) ? (a) : (b))
/* A string literal as (pointer, length) arguments. */
#define LIT(s) (s), (sizeof(s) - 1)

/* Prints "crmd: fatal: ..." to stderr and aborts. */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);

/* malloc/calloc/realloc/strdup that abort with a message instead of returning NULL. */
/* The process's resident set now, from /proc/self/statm (0 when unreadable). */
uint64_t process_rss_bytes(void);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrndup(const char *s, size_t n);

/* The next non-empty item of a comma-separated list at *p, trimmed of spaces and tabs, as
 * (*item, *len); advances *p past it. False when the list is exhausted. */
bool csv_next(const char **p, const char **item, size_t *len);

#endif

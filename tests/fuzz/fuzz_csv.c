// fuzz-sources: core/csv.c core/common.c
/*
 * libFuzzer harness for core/csv.c. Each input is parsed whole and again split at a point the
 * input chooses: both must give the same records or the same refusal. Accepted records are
 * written back as CSV with every field quoted and parsed again: the same fields must come back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);                                          \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

typedef struct {
    char *flat; /* fields as len:bytes, records ended by \n */
    size_t n, cap;
    char *csv; /* the records written back */
    size_t cn, ccap;
} sink_t;

static void put(char **p, size_t *n, size_t *cap, const void *s, size_t len)
{
    if (*n + len > *cap) {
        *cap = (*n + len) * 2 + 64;
        *p = realloc(*p, *cap);
        ASSERT(*p);
    }
    memcpy(*p + *n, s, len);
    *n += len;
}

static bool on_record(const csv_record_t *rec, void *arg)
{
    sink_t *s = arg;
    for (int i = 0; i < rec->nfields; i++) {
        char len[16];
        int k = snprintf(len, sizeof(len), "%u:", rec->len[i]);
        put(&s->flat, &s->n, &s->cap, len, (size_t)k);
        put(&s->flat, &s->n, &s->cap, rec->data + rec->off[i], rec->len[i]);
        if (i)
            put(&s->csv, &s->cn, &s->ccap, ",", 1);
        put(&s->csv, &s->cn, &s->ccap, "\"", 1);
        for (uint32_t j = 0; j < rec->len[i]; j++) {
            char c = rec->data[rec->off[i] + j];
            put(&s->csv, &s->cn, &s->ccap, &c, 1);
            if (c == '"')
                put(&s->csv, &s->cn, &s->ccap, &c, 1);
        }
        put(&s->csv, &s->cn, &s->ccap, "\"", 1);
    }
    put(&s->flat, &s->n, &s->cap, "\n", 1);
    put(&s->csv, &s->cn, &s->ccap, "\r\n", 2);
    return true;
}

static bool run(const uint8_t *data, size_t size, size_t split, sink_t *s, char *err)
{
    csv_parser_t p;
    memset(s, 0, sizeof(*s));
    csv_init(&p, on_record, s);
    bool ok = csv_feed(&p, (const char *)data, split) &&
              csv_feed(&p, (const char *)data + split, size - split) && csv_finish(&p);
    strcpy(err, ok ? "" : p.error);
    csv_free(&p);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    size_t split = size ? (size_t)copy[0] % (size + 1) : 0;
    sink_t a, b;
    char ea[128], eb[128];
    bool oa = run(copy, size, 0, &a, ea);
    bool ob = run(copy, size, split, &b, eb);
    ASSERT(oa == ob);
    ASSERT(oa ? a.n == b.n && memcmp(a.flat, b.flat, a.n) == 0 : strcmp(ea, eb) == 0);
    if (oa && a.n) {
        sink_t c;
        char ec[128];
        /* a leading BOM-like field would be eaten on reparse: quoted, it cannot be */
        ASSERT(run((const uint8_t *)a.csv, a.cn, 0, &c, ec));
        ASSERT(c.n == a.n && memcmp(c.flat, a.flat, a.n) == 0);
        free(c.flat);
        free(c.csv);
    }
    free(a.flat);
    free(a.csv);
    free(b.flat);
    free(b.csv);
    free(copy);
    return 0;
}

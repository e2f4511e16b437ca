/*
 * The RFC 4180 push parser (see csv.h): one state machine over bytes; a record's fields are
 * collected unescaped in one buffer with their offsets, so a field costs no allocation.
 */
#include "core/csv.h"
#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    S_FIELD_START, /* at the start of a field */
    S_UNQUOTED,    /* inside an unquoted field */
    S_QUOTED,      /* inside a quoted field */
    S_QUOTE,       /* a quote inside a quoted field: the end, or the first of "" */
    S_CR,          /* a CR after an unquoted field: LF must follow to end the record, else it is data */
    S_QCR,         /* a CR after a closing quote: LF must follow */
    S_ERROR,
};

void csv_init(csv_parser_t *p, csv_record_fn fn, void *arg)
{
    memset(p, 0, sizeof(*p));
    p->fn = fn;
    p->arg = arg;
    p->state = S_FIELD_START;
}

void csv_free(csv_parser_t *p)
{
    free(p->buf);
    p->buf = NULL;
}

static bool fail(csv_parser_t *p, const char *what)
{
    snprintf(p->error, sizeof(p->error), "record %llu: %s", (unsigned long long)(p->rec.number + 1), what);
    p->state = S_ERROR;
    return false;
}

static bool put(csv_parser_t *p, char c)
{
    if (p->len >= CSV_MAX_RECORD)
        return fail(p, "longer than 1 MiB");
    if (p->len == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 256;
        p->buf = xrealloc(p->buf, p->cap);
    }
    p->buf[p->len++] = c;
    return true;
}

/* Starts field number nfields at the current length. */
static bool field_begin(csv_parser_t *p)
{
    if (p->rec.nfields >= CSV_MAX_FIELDS)
        return fail(p, "more than 256 fields");
    p->rec.off[p->rec.nfields] = (uint32_t)p->len;
    p->rec.len[p->rec.nfields] = 0;
    p->rec.nfields++;
    return true;
}

static void field_end(csv_parser_t *p)
{
    int i = p->rec.nfields - 1;
    p->rec.len[i] = (uint32_t)(p->len - p->rec.off[i]);
}

static bool record_end(csv_parser_t *p)
{
    field_end(p);
    p->rec.number++;
    p->rec.data = p->buf;
    bool go = p->fn(&p->rec, p->arg);
    p->len = 0;
    p->rec.nfields = 0;
    p->state = S_FIELD_START;
    if (!go) {
        p->stopped = true;
        p->state = S_ERROR;
        snprintf(p->error, sizeof(p->error), "stopped at record %llu", (unsigned long long)p->rec.number);
    }
    return go;
}

bool csv_feed(csv_parser_t *p, const char *data, size_t n)
{
    static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};
    size_t i = 0;
    while (!p->started && i < n) { /* a BOM, possibly split across chunks */
        if ((unsigned char)data[i] == bom[p->bom]) {
            i++;
            if (++p->bom == 3)
                p->started = true;
            continue;
        }
        p->started = true;
        for (int k = 0; k < p->bom; k++) /* a partial BOM was data after all */
            if (!csv_feed(p, (const char *)&bom[k], 1))
                return false;
        p->bom = 0;
    }
    for (; i < n; i++) {
        char c = data[i];
        switch (p->state) {
        case S_ERROR:
            return false;
        case S_CR:
            if (c == '\n') {
                if (!record_end(p))
                    return false;
                continue;
            }
            /* a lone CR is data of the (unquoted) field; reprocess c */
            if (!put(p, '\r'))
                return false;
            p->state = S_UNQUOTED;
            i--;
            continue;
        case S_QCR:
            if (c != '\n')
                return fail(p, "text after a closing quote");
            if (!record_end(p))
                return false;
            continue;
        case S_FIELD_START:
            if (!field_begin(p))
                return false;
            if (c == '"') {
                p->state = S_QUOTED;
                continue;
            }
            p->state = S_UNQUOTED;
            /* fall through */
        case S_UNQUOTED:
            if (c == ',') {
                field_end(p);
                p->state = S_FIELD_START;
            } else if (c == '\n') {
                if (!record_end(p))
                    return false;
            } else if (c == '\r') {
                p->state = S_CR;
            } else if (!put(p, c)) { /* a quote here is data (37°36'37.8"N) */
                return false;
            }
            continue;
        case S_QUOTED:
            if (c == '"')
                p->state = S_QUOTE;
            else if (!put(p, c))
                return false;
            continue;
        case S_QUOTE:
            if (c == '"') {
                if (!put(p, '"'))
                    return false;
                p->state = S_QUOTED;
            } else if (c == ',') {
                field_end(p);
                p->state = S_FIELD_START;
            } else if (c == '\n') {
                if (!record_end(p))
                    return false;
            } else if (c == '\r') {
                p->state = S_QCR;
            } else {
                return fail(p, "text after a closing quote");
            }
            continue;
        }
    }
    return p->state != S_ERROR;
}

bool csv_finish(csv_parser_t *p)
{
    if (!p->started && p->bom) { /* input was a partial BOM: data */
        p->started = true;
        static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};
        int k = p->bom;
        p->bom = 0;
        if (!csv_feed(p, (const char *)bom, (size_t)k))
            return false;
    }
    switch (p->state) {
    case S_ERROR:
        return false;
    case S_QUOTED:
        return fail(p, "a quoted field is not closed");
    case S_CR:
        if (!put(p, '\r'))
            return false;
        return record_end(p);
    case S_QCR:
        return record_end(p);
    case S_UNQUOTED:
    case S_QUOTE:
        return record_end(p);
    default: /* S_FIELD_START: at a record start nothing is pending; after a comma an empty field */
        if (p->rec.nfields > 0) {
            if (!field_begin(p))
                return false;
            return record_end(p);
        }
        return true;
    }
}

/*
 * A push parser for RFC 4180 CSV: the caller feeds chunks of any size (a field or a record may
 * span chunks) and gets each record through a callback.
 *
 * Accepted: a UTF-8 byte order mark at the very start (skipped); records ending in CRLF or LF
 * (a lone CR inside an unquoted field is data); fields quoted with ", holding commas, CR, LF and
 * doubled quotes ""; a last record without a line end; a quote inside an unquoted field, as
 * data (37°36'37.8"N: csv-spectrum's location_coordinates, as spreadsheets write it). Refused,
 * with the record number: anything but a comma or a line end after a closing quote, a quoted
 * field not closed at the end, a record of more than CSV_MAX_FIELDS fields or CSV_MAX_RECORD
 * bytes.
 *
 * Why our own: Debian 12 has libcsv3 (3.0.3), a callback parser too, but what we need around it
 * (a bound on a record's size, record numbers in errors, the BOM, refusing stray quotes) is as
 * long as this state machine, which is tested against the csv-spectrum cases, at every chunk
 * split, and by a fuzzer (tests/fuzz/fuzz_csv.c).
 */
#ifndef CRMD_CORE_CSV_H
#define CRMD_CORE_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CSV_MAX_FIELDS 256
#define CSV_MAX_RECORD (1024 * 1024)

/* One record: nfields fields, field i at data + off[i], len[i] bytes (not NUL-terminated; the
 * unquoted, unescaped text). Valid during the callback only. Return false to stop. */
typedef struct csv_record {
    uint64_t number; /* 1-based, the header counted */
    int nfields;
    const char *data;
    uint32_t off[CSV_MAX_FIELDS];
    uint32_t len[CSV_MAX_FIELDS];
} csv_record_t;

typedef bool (*csv_record_fn)(const csv_record_t *rec, void *arg);

typedef struct csv_parser {
    csv_record_fn fn;
    void *arg;
    char *buf; /* the record being built */
    size_t len, cap;
    csv_record_t rec;
    int state;
    bool started; /* a byte was seen (the BOM check) */
    uint8_t bom;  /* BOM bytes matched so far */
    bool stopped;
    char error[128];
} csv_parser_t;

void csv_init(csv_parser_t *p, csv_record_fn fn, void *arg);
void csv_free(csv_parser_t *p);

/* Feeds n bytes. false once the input is malformed (p->error says where) or the callback
 * stopped; later calls then do nothing. */
bool csv_feed(csv_parser_t *p, const char *data, size_t n);

/* Ends the input: emits a last record without a line end. false as csv_feed. */
bool csv_finish(csv_parser_t *p);

#endif

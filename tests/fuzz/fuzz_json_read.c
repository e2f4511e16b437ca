// fuzz-sources: core/json_read.c core/json.c core/buf.c core/common.c core/utf8.c
/*
 * libFuzzer harness for core/json_read.c. Each input is parsed from an exact-size heap copy (so
 * ASan sees any read past the slice). A refusal must point inside the input with a message and
 * a line and column that match the offset. An accepted tree is written back with the
 * core/json.h value functions and parsed again: the second parse must succeed and give the
 * same tree (types, decoded strings, number texts, member order). Every member must be found
 * by json_object_getn (so duplicate keys could not have slipped in), and an integer that
 * json_get_i64 reads must come back the same through json_i64.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/json_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);                                          \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

static arena_t arena;
static buf_t out;

/* Writes v as JSON; commas and brackets by hand, as the writer's depth limit is 63, ours 64. */
static void emit(buf_t *b, const json_value_t *v)
{
    size_t n;
    const char *s;
    switch (json_type(v)) {
    case JSON_NULL:
        json_null(b);
        break;
    case JSON_FALSE:
    case JSON_TRUE:
        json_bool(b, json_type(v) == JSON_TRUE);
        break;
    case JSON_NUMBER:
        s = json_number_text(v, &n);
        buf_append(b, s, n);
        break;
    case JSON_STRING:
        s = json_string(v, &n);
        json_str(b, s, n);
        break;
    case JSON_ARRAY:
        buf_putc(b, '[');
        for (size_t i = 0; i < json_array_len(v); i++) {
            if (i)
                buf_putc(b, ',');
            emit(b, json_array_at(v, i));
        }
        buf_putc(b, ']');
        break;
    case JSON_OBJECT:
        buf_putc(b, '{');
        for (size_t i = 0; i < json_object_len(v); i++) {
            if (i)
                buf_putc(b, ',');
            s = json_object_key_at(v, i, &n);
            json_key_str(b, s, n);
            emit(b, json_object_value_at(v, i));
        }
        buf_putc(b, '}');
        break;
    }
}

static void check_same(const json_value_t *a, const json_value_t *b)
{
    size_t an, bn;
    const char *as, *bs;
    ASSERT(json_type(a) == json_type(b));
    switch (json_type(a)) {
    case JSON_NULL:
    case JSON_FALSE:
    case JSON_TRUE:
        break;
    case JSON_NUMBER:
        as = json_number_text(a, &an);
        bs = json_number_text(b, &bn);
        ASSERT(an == bn && memcmp(as, bs, an) == 0);
        break;
    case JSON_STRING:
        as = json_string(a, &an);
        bs = json_string(b, &bn);
        ASSERT(an == bn && memcmp(as, bs, an) == 0 && as[an] == '\0');
        break;
    case JSON_ARRAY:
        ASSERT(json_array_len(a) == json_array_len(b));
        for (size_t i = 0; i < json_array_len(a); i++)
            check_same(json_array_at(a, i), json_array_at(b, i));
        ASSERT(json_array_at(a, json_array_len(a)) == NULL);
        break;
    case JSON_OBJECT:
        ASSERT(json_object_len(a) == json_object_len(b));
        for (size_t i = 0; i < json_object_len(a); i++) {
            as = json_object_key_at(a, i, &an);
            bs = json_object_key_at(b, i, &bn);
            ASSERT(an == bn && memcmp(as, bs, an) == 0);
            ASSERT(json_object_getn(a, as, an) == json_object_value_at(a, i));
            ASSERT(json_object_getn(b, as, an) == json_object_value_at(b, i));
            check_same(json_object_value_at(a, i), json_object_value_at(b, i));
        }
        break;
    }
}

/* Integer numbers survive json_i64; any number that converts to a double is finite. */
static void check_numbers(const json_value_t *v)
{
    int64_t i;
    double d;
    if (json_type(v) == JSON_NUMBER) {
        if (json_get_i64(v, &i)) {
            buf_t b = BUF_INIT;
            json_i64(&b, i);
            json_value_t *w = json_parse(&arena, b.data, b.len, NULL);
            int64_t j;
            ASSERT(w && json_get_i64(w, &j) && j == i);
            buf_free(&b);
        }
        if (json_get_double(v, &d))
            ASSERT(d == d && d - d == 0);
    }
    for (size_t k = 0; k < json_array_len(v); k++)
        check_numbers(json_array_at(v, k));
    for (size_t k = 0; k < json_object_len(v); k++)
        check_numbers(json_object_value_at(v, k));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    arena_reset(&arena);

    json_error_t err;
    json_value_t *v = json_parse(&arena, text, size, &err);
    if (!v) {
        ASSERT(err.message != NULL && err.offset <= size);
        size_t line = 1, col = 1;
        for (size_t i = 0; i < err.offset; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        ASSERT(err.line == line && err.column == col);
        free(text);
        return 0;
    }

    buf_reset(&out);
    emit(&out, v);
    json_value_t *w = json_parse(&arena, out.data, out.len, &err);
    if (!w)
        fprintf(stderr, "reparse failed at %zu: %s\n", err.offset, err.message);
    ASSERT(w != NULL);
    check_same(v, w);
    check_numbers(v);
    free(text);
    return 0;
}

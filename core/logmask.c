/* Only declared fields of logged request bodies keep their values; see logmask.h. */
#include "core/logmask.h"
#include "core/json.h"
#include "core/json_read.h"

#include <ctype.h>
#include <string.h>

static const char *const secret_words[] = {
    "password", "passwd", "secret", "token", "apikey", "api_key",     "authorization", "cookie",
    "ssn",      "card",   "cvv",    "cvc",   "pin",    "private_key", "privatekey",    "credential"};

bool log_mask_field(const char *name, size_t n)
{
    char low[128];
    if (n >= sizeof(low))
        n = sizeof(low) - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    low[n] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(secret_words); i++) {
        const char *w = secret_words[i];
        const char *hit = strstr(low, w);
        if (!hit)
            continue;
        /* short words must stand alone ("pin", not "shipping"): bounded by start/end/_/-/. */
        size_t wl = strlen(w);
        if (wl > 4)
            return true;
        bool left = hit == low || !isalpha((unsigned char)hit[-1]);
        bool right = !isalpha((unsigned char)hit[wl]);
        if (left && right)
            return true;
    }
    return false;
}

static log_loggable_fn loggable;

void log_mask_set_loggable(log_loggable_fn fn)
{
    loggable = fn;
}

/* {"type":"string","len":12}: what a value not declared loggable leaves in the log. */
static void put_shape(buf_t *out, const json_value_t *v)
{
    static const char *const names[] = {"null", "boolean", "boolean", "number", "string", "array", "object"};
    json_type_t t = json_type(v);
    size_t n = 0;
    buf_append_lit(out, "{\"type\":\"");
    buf_append(out, names[t], strlen(names[t]));
    buf_append_lit(out, "\"");
    if (t == JSON_STRING)
        json_string(v, &n);
    else if (t == JSON_NUMBER)
        json_number_text(v, &n);
    else if (t == JSON_ARRAY)
        n = json_array_len(v);
    else if (t == JSON_OBJECT)
        n = json_object_len(v);
    if (t == JSON_STRING || t == JSON_NUMBER || t == JSON_ARRAY || t == JSON_OBJECT) {
        buf_append_lit(out, ",\"len\":");
        buf_append_u64(out, n);
    }
    buf_putc(out, '}');
}

static void put(buf_t *out, const json_value_t *v, size_t limit)
{
    size_t n;
    if (out->len > limit) {
        buf_append_lit(out, "\"...\"");
        return;
    }
    switch (json_type(v)) {
    case JSON_NULL:
        buf_append_lit(out, "null");
        break;
    case JSON_FALSE:
        buf_append_lit(out, "false");
        break;
    case JSON_TRUE:
        buf_append_lit(out, "true");
        break;
    case JSON_NUMBER: {
        const char *t = json_number_text(v, &n);
        buf_append(out, t, MIN(n, 40));
        break;
    }
    case JSON_STRING: {
        const char *t = json_string(v, &n);
        json_str(out, t, MIN(n, 200));
        break;
    }
    case JSON_ARRAY:
        buf_putc(out, '[');
        for (size_t i = 0; i < json_array_len(v); i++) {
            if (i)
                buf_putc(out, ',');
            if (out->len > limit) {
                buf_append_lit(out, "\"...\"");
                break;
            }
            put(out, json_array_at(v, i), limit);
        }
        buf_putc(out, ']');
        break;
    case JSON_OBJECT:
        buf_putc(out, '{');
        for (size_t i = 0; i < json_object_len(v); i++) {
            if (i)
                buf_putc(out, ',');
            if (out->len > limit) {
                buf_append_lit(out, "\"...\":\"...\"");
                break;
            }
            const char *k = json_object_key_at(v, i, &n);
            json_str(out, k, MIN(n, 100));
            buf_putc(out, ':');
            /* a value (or a container, walked member by member) only under a declared name
             * that does not look like a secret either; else its type and length */
            const json_value_t *mv = json_object_value_at(v, i);
            if (loggable && loggable(k, n) && !log_mask_field(k, n))
                put(out, mv, limit);
            else
                put_shape(out, mv);
        }
        buf_putc(out, '}');
        break;
    }
}

void log_mask_json(buf_t *out, const char *body, size_t n)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    /* parsing a many-megabyte body to log a kilobyte of it is not worth the CPU */
    const json_value_t *v = n && n <= 64 * 1024 ? json_parse(&a, body, n, NULL) : NULL;
    if (v && (json_type(v) == JSON_OBJECT || json_type(v) == JSON_ARRAY)) {
        put(out, v, out->len + LOG_MASK_MAX);
    } else if (v) {
        put_shape(out, v); /* a bare value has no name to declare it by */
    } else {
        buf_append_lit(out, "{\"bytes\":");
        buf_append_u64(out, n);
        buf_putc(out, '}');
    }
    arena_destroy(&a);
}

/* Masking of secrets in logged request bodies; see logmask.h. */
#include "core/logmask.h"
#include "core/json.h"
#include "core/json_read.h"

#include <ctype.h>
#include <string.h>

static const char *const secret_words[] = {"password", "passwd", "secret", "token", "apikey", "api_key",
                                           "authorization", "cookie", "ssn", "card", "cvv", "cvc", "pin",
                                           "private_key", "privatekey", "credential"};

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
            if (log_mask_field(k, n))
                buf_append_lit(out, "\"***\"");
            else
                put(out, json_object_value_at(v, i), limit);
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
    if (v) {
        put(out, v, out->len + LOG_MASK_MAX);
    } else {
        buf_append_lit(out, "{\"bytes\":");
        buf_append_u64(out, n);
        buf_putc(out, '}');
    }
    arena_destroy(&a);
}

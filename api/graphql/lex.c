/*
 * The GraphQL lexer; see lex.h. It follows the spec's lexical grammar (October 2021, 2.1) and
 * words its errors as graphql-js does, so a client sees the messages it knows. Two choices are
 * stricter than graphql-js, as the spec's SourceCharacter is: control characters other than
 * tab, line feed and carriage return are refused everywhere, strings and comments included,
 * and the bytes must be well-formed UTF-8 (checked here as each character is met, so a
 * document is read once).
 */
#include "api/graphql/lex.h"
#include "core/utf8.h"

#include <stdarg.h>
#include <stdio.h>

void gql_syntax_error(gql_error_t *err, gql_loc_t loc, const char *fmt, ...)
{
    static const char prefix[] = "Syntax Error: ";
    va_list ap;
    memcpy(err->message, prefix, sizeof prefix);
    va_start(ap, fmt);
    vsnprintf(err->message + sizeof prefix - 1, sizeof err->message - (sizeof prefix - 1), fmt, ap);
    va_end(ap);
    /* a message cut short may end inside a UTF-8 sequence: drop it */
    size_t len = strlen(err->message);
    while (len && !utf8_valid(err->message, len))
        err->message[--len] = '\0';
    err->loc = loc;
}

char *gql_excerpt(char *out, size_t cap, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t k = p[i] < 0x80 ? 1 : utf8_seq_len(p + i, n - i);
        if (k == 0 || (p[i] < 0x20 && p[i] != '\t'))
            break;
        if (o + k > cap - 4) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, p + i, k);
        o += k;
        i += k;
    }
    out[o] = '\0';
    return out;
}

void gql_lex_init(gql_lexer_t *lx, arena_t *a, const char *src, size_t n, uint32_t max_tokens,
                  gql_error_t *err)
{
    *lx = (gql_lexer_t){.a = a, .src = (const unsigned char *)src, .n = n, .line = 1, .col = 1};
    lx->max_tokens = max_tokens;
    lx->err = err;
}

void gql_lex_free(gql_lexer_t *lx)
{
    buf_free(&lx->scratch);
}

/* ---- positions and errors ---- */

static void new_line(gql_lexer_t *lx, size_t next)
{
    lx->line++;
    lx->line_start = next;
}

/* Line and column of pos (on the current line). Columns are counted from a cached position,
 * and positions asked for only grow, so counting costs O(n) over the whole document. */
static gql_loc_t loc_at(gql_lexer_t *lx, size_t pos)
{
    if (lx->col_pos < lx->line_start || pos < lx->col_pos) {
        lx->col_pos = lx->line_start;
        lx->col = 1;
    }
    for (; lx->col_pos < pos; lx->col_pos++)
        lx->col += (lx->src[lx->col_pos] & 0xc0) != 0x80;
    return (gql_loc_t){lx->line, lx->col};
}

static bool fail(gql_lexer_t *lx, size_t pos, const char *msg)
{
    gql_syntax_error(lx->err, loc_at(lx, pos), "%s", msg);
    return false;
}

static bool fail_utf8(gql_lexer_t *lx, size_t pos)
{
    gql_syntax_error(lx->err, loc_at(lx, pos), "Invalid UTF-8 byte: 0x%02X.", lx->src[pos]);
    return false;
}

/* The code point of the well-formed sequence at p, k bytes long. */
static uint32_t decode(const unsigned char *p, size_t k)
{
    if (k == 1)
        return p[0];
    uint32_t cp = p[0] & (0x7f >> k);
    for (size_t i = 1; i < k; i++)
        cp = cp << 6 | (p[i] & 0x3f);
    return cp;
}

/* "<prefix>: <the character at pos>." as graphql-js prints it: "x" for printable ASCII, '"'
 * for the quote, U+XXXX otherwise, <EOF> past the end. Ill-formed UTF-8 there is its own error. */
static bool fail_char(gql_lexer_t *lx, size_t pos, const char *prefix)
{
    char desc[16];
    if (pos >= lx->n) {
        snprintf(desc, sizeof desc, "<EOF>");
    } else {
        unsigned c = lx->src[pos];
        size_t k = c < 0x80 ? 1 : utf8_seq_len(lx->src + pos, lx->n - pos);
        if (k == 0)
            return fail_utf8(lx, pos);
        if (c == '"')
            snprintf(desc, sizeof desc, "'\"'");
        else if (c >= 0x20 && c < 0x7f)
            snprintf(desc, sizeof desc, "\"%c\"", c);
        else
            snprintf(desc, sizeof desc, "U+%04X", (unsigned)decode(lx->src + pos, k));
    }
    gql_syntax_error(lx->err, loc_at(lx, pos), "%s: %s.", prefix, desc);
    return false;
}

/* Length of the source character at p (one that may appear in a comment or string: not a
 * control character but tab), or 0 with the error set. */
static size_t source_char(gql_lexer_t *lx, size_t p, const char *what)
{
    unsigned c = lx->src[p];
    if (c >= 0x80) {
        size_t k = utf8_seq_len(lx->src + p, lx->n - p);
        if (k == 0)
            fail_utf8(lx, p);
        return k;
    }
    if (c < 0x20 && c != '\t') {
        fail_char(lx, p, what);
        return 0;
    }
    return 1;
}

/* ---- character classes ---- */

static bool is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

static bool is_name_start(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_continue(unsigned c)
{
    return is_name_start(c) || is_digit(c);
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ---- comments, names, numbers ---- */

/* Skips "#..." to the end of the line; *p is at the '#'. */
static bool skip_comment(gql_lexer_t *lx, size_t *p)
{
    size_t i = *p + 1;
    while (i < lx->n && lx->src[i] != '\n' && lx->src[i] != '\r') {
        size_t k = source_char(lx, i, "Invalid character");
        if (k == 0)
            return false;
        i += k;
    }
    *p = i;
    return true;
}

static size_t read_name(const gql_lexer_t *lx, size_t p)
{
    for (p++; p < lx->n && is_name_continue(lx->src[p]); p++)
        ;
    return p;
}

/* Digit+ at *p. */
static bool read_digits(gql_lexer_t *lx, size_t *p)
{
    size_t i = *p;
    if (i >= lx->n || !is_digit(lx->src[i]))
        return fail_char(lx, i, "Invalid number, expected digit but got");
    while (i < lx->n && is_digit(lx->src[i]))
        i++;
    *p = i;
    return true;
}

/* IntValue or FloatValue at p (a digit or '-'): no leading zeros, and nothing a number could
 * be mistaken to continue with (a digit, '.', a name start) right after it. */
static bool lex_number(gql_lexer_t *lx, size_t p, gql_token_t *t)
{
    const unsigned char *s = lx->src;
    size_t n = lx->n;
    bool is_float = false;
    if (s[p] == '-')
        p++;
    if (p < n && s[p] == '0') {
        p++;
        if (p < n && is_digit(s[p]))
            return fail_char(lx, p, "Invalid number, unexpected digit after 0");
    } else if (!read_digits(lx, &p)) {
        return false;
    }
    if (p < n && s[p] == '.') {
        is_float = true;
        p++;
        if (!read_digits(lx, &p))
            return false;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        is_float = true;
        p++;
        if (p < n && (s[p] == '+' || s[p] == '-'))
            p++;
        if (!read_digits(lx, &p))
            return false;
    }
    if (p < n && (s[p] == '.' || is_name_start(s[p])))
        return fail_char(lx, p, "Invalid number, expected digit but got");
    t->kind = is_float ? GT_FLOAT : GT_INT;
    lx->pos = p;
    return true;
}

/* ---- strings ---- */

static void put_utf8(buf_t *b, uint32_t cp)
{
    char *o = buf_reserve(b, 4);
    size_t k;
    if (cp < 0x80) {
        o[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        o[0] = (char)(0xf0 | cp >> 18);
        o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    b->len += k;
}

static bool is_surrogate(uint32_t cp)
{
    return cp >= 0xd800 && cp <= 0xdfff;
}

/* Four hex digits at p, or -1. */
static int32_t hex4(const gql_lexer_t *lx, size_t p)
{
    int32_t v = 0;
    for (size_t i = p; i < p + 4; i++) {
        int d = i < lx->n ? hex_value(lx->src[i]) : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* "Invalid ... escape sequence" quoting the escape's first chars characters (code points; as
 * graphql-js counts, for the BMP). */
static bool fail_escape(gql_lexer_t *lx, size_t p, size_t chars, const char *what)
{
    char text[48];
    size_t len = 0;
    while (chars-- && p + len < lx->n) {
        size_t k = utf8_seq_len(lx->src + p + len, lx->n - p - len);
        len += k ? k : 1;
    }
    gql_excerpt(text, sizeof text, (const char *)lx->src + p, len);
    gql_syntax_error(lx->err, loc_at(lx, p), "Invalid %s escape sequence: \"%s\".", what, text);
    return false;
}

/* \u{X...}: up to 8 hex digits (the braces included, 12 characters, as graphql-js reads), a
 * Unicode scalar value. *p is at the backslash. */
static bool escape_braced(gql_lexer_t *lx, size_t *p, buf_t *b)
{
    size_t at = *p, size = 3;
    uint32_t cp = 0;
    while (size < 12) {
        int c = at + size < lx->n ? lx->src[at + size] : -1;
        size++;
        if (c == '}') {
            if (size < 5 || cp > 0x10ffff || is_surrogate(cp))
                break;
            put_utf8(b, cp);
            *p = at + size;
            return true;
        }
        int d = hex_value(c);
        if (d < 0)
            break;
        cp = cp << 4 | (uint32_t)d; /* 8 digits at most: no overflow */
        if (cp & 0x80000000u)
            break; /* where graphql-js's 32-bit arithmetic stops */
    }
    return fail_escape(lx, at, size, "Unicode");
}

/* \uXXXX, or a surrogate pair of two such escapes. */
static bool escape_fixed(gql_lexer_t *lx, size_t *p, buf_t *b)
{
    size_t at = *p;
    int32_t cp = hex4(lx, at + 2);
    if (cp >= 0 && !is_surrogate((uint32_t)cp)) {
        put_utf8(b, (uint32_t)cp);
        *p = at + 6;
        return true;
    }
    if (cp >= 0xd800 && cp <= 0xdbff && at + 7 < lx->n && lx->src[at + 6] == '\\' && lx->src[at + 7] == 'u') {
        int32_t lo = hex4(lx, at + 8);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
            put_utf8(b, 0x10000 + (((uint32_t)cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00));
            *p = at + 12;
            return true;
        }
    }
    return fail_escape(lx, at, 6, "Unicode");
}

/* The escape sequence at *p (a backslash) appended to b; *p moves past it. */
static bool lex_escape(gql_lexer_t *lx, size_t *p, buf_t *b)
{
    size_t at = *p;
    int c = at + 1 < lx->n ? lx->src[at + 1] : -1;
    static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    for (size_t i = 0; i + 1 < sizeof simple; i += 2) {
        if (c == simple[i]) {
            buf_putc(b, simple[i + 1]);
            *p = at + 2;
            return true;
        }
    }
    if (c == 'u')
        return at + 2 < lx->n && lx->src[at + 2] == '{' ? escape_braced(lx, p, b) : escape_fixed(lx, p, b);
    /* a control character or a bad byte after the backslash is that error, not a bad escape */
    if (c >= 0 && c != '\n' && c != '\r' && source_char(lx, at + 1, "Invalid character within String") == 0)
        return false;
    return fail_escape(lx, at, 2, "character");
}

/* "...": the value decoded into the arena. start is at the opening quote. */
static bool lex_string(gql_lexer_t *lx, size_t start, gql_token_t *t)
{
    const unsigned char *s = lx->src;
    buf_t *b = &lx->scratch;
    size_t p = start + 1, chunk = p;
    buf_reset(b);
    while (p < lx->n) {
        unsigned c = s[p];
        if (c == '"') {
            buf_append(b, s + chunk, p - chunk);
            t->kind = GT_STRING;
            t->s = arena_strndup(lx->a, b->len ? b->data : "", b->len);
            t->n = b->len;
            lx->pos = p + 1;
            return true;
        }
        if (c == '\\') {
            buf_append(b, s + chunk, p - chunk);
            if (!lex_escape(lx, &p, b))
                return false;
            chunk = p;
            continue;
        }
        if (c == '\n' || c == '\r')
            break;
        size_t k = source_char(lx, p, "Invalid character within String");
        if (k == 0)
            return false;
        p += k;
    }
    return fail(lx, p, "Unterminated string.");
}

/* What the first pass over a block string learns, for BlockStringValue() (spec 2.9.4). */
typedef struct block_scan {
    size_t close;                 /* offset of the closing """ */
    size_t common;                /* common indentation of the lines after the first (SIZE_MAX: none) */
    size_t first, last, nonblank; /* first and last lines with more than whitespace, and how many */
} block_scan_t;

static bool is_triple_quote(const gql_lexer_t *lx, size_t p)
{
    return p + 2 < lx->n && lx->src[p] == '"' && lx->src[p + 1] == '"' && lx->src[p + 2] == '"';
}

static bool is_escaped_triple_quote(const gql_lexer_t *lx, size_t p)
{
    return lx->src[p] == '\\' && is_triple_quote(lx, p + 1);
}

/* First pass: checks the characters, finds the end, counts lines (advancing the lexer's line)
 * and measures indentation. */
static bool block_scan(gql_lexer_t *lx, size_t p, block_scan_t *bs)
{
    size_t line = 0, indent = 0;
    bool blank = true;
    *bs = (block_scan_t){.common = SIZE_MAX};
    for (;;) {
        if (p >= lx->n)
            return fail(lx, p, "Unterminated string.");
        unsigned c = lx->src[p];
        bool closing = is_triple_quote(lx, p);
        if (closing || c == '\n' || c == '\r') {
            if (!blank) {
                if (bs->nonblank++ == 0)
                    bs->first = line;
                bs->last = line;
                if (line > 0 && indent < bs->common)
                    bs->common = indent;
            }
            if (closing) {
                bs->close = p;
                return true;
            }
            p += c == '\r' && p + 1 < lx->n && lx->src[p + 1] == '\n' ? 2 : 1;
            new_line(lx, p);
            line++;
            indent = 0;
            blank = true;
            continue;
        }
        if (c == ' ' || c == '\t') {
            indent += blank;
            p++;
            continue;
        }
        blank = false;
        if (is_escaped_triple_quote(lx, p)) {
            p += 4;
            continue;
        }
        size_t k = source_char(lx, p, "Invalid character within String");
        if (k == 0)
            return false;
        p += k;
    }
}

/* """...""": the value is the raw text with \""" unescaped, lines split at CR, LF or CRLF,
 * the common indentation removed from every line but the first, leading and trailing blank
 * lines dropped, and the lines joined with LF. */
static bool lex_block_string(gql_lexer_t *lx, size_t start, gql_token_t *t)
{
    block_scan_t bs;
    size_t p = start + 3;
    if (!block_scan(lx, p, &bs))
        return false;
    char *out = arena_alloc(lx->a, bs.close - p + 1);
    size_t o = 0;
    for (size_t line = 0; p < bs.close; line++) {
        size_t end = p; /* end of this line's text */
        while (end < bs.close && lx->src[end] != '\n' && lx->src[end] != '\r')
            end += is_escaped_triple_quote(lx, end) ? 4 : 1;
        if (bs.nonblank && line >= bs.first && line <= bs.last) {
            if (line > bs.first)
                out[o++] = '\n';
            size_t i = line > 0 ? p + MIN(bs.common, end - p) : p;
            while (i < end) {
                if (is_escaped_triple_quote(lx, i))
                    i++;
                out[o++] = (char)lx->src[i++];
            }
        }
        p = end;
        if (p < bs.close)
            p += lx->src[p] == '\r' && p + 1 < bs.close && lx->src[p + 1] == '\n' ? 2 : 1;
    }
    out[o] = '\0';
    t->kind = GT_BLOCK_STRING;
    t->s = out;
    t->n = o;
    lx->pos = bs.close + 3;
    return true;
}

/* ---- tokens ---- */

static int punctuator(unsigned c)
{
    switch (c) {
    case '!':
        return GT_BANG;
    case '$':
        return GT_DOLLAR;
    case '&':
        return GT_AMP;
    case '(':
        return GT_PAREN_L;
    case ')':
        return GT_PAREN_R;
    case ':':
        return GT_COLON;
    case '=':
        return GT_EQUALS;
    case '@':
        return GT_AT;
    case '[':
        return GT_BRACKET_L;
    case ']':
        return GT_BRACKET_R;
    case '{':
        return GT_BRACE_L;
    case '|':
        return GT_PIPE;
    case '}':
        return GT_BRACE_R;
    }
    return -1;
}

/* Skips ignored tokens (spaces, tabs, line terminators, commas, comments, byte order marks);
 * *p ends at the next token or the end. */
static bool skip_ignored(gql_lexer_t *lx, size_t *p)
{
    const unsigned char *s = lx->src;
    size_t i = *p;
    while (i < lx->n) {
        unsigned c = s[i];
        if (c == ' ' || c == '\t' || c == ',') {
            i++;
        } else if (c == '\n' || c == '\r') {
            i += c == '\r' && i + 1 < lx->n && s[i + 1] == '\n' ? 2 : 1;
            new_line(lx, i);
        } else if (c == '#') {
            if (!skip_comment(lx, &i))
                return false;
        } else if (c == 0xef && i + 2 < lx->n && s[i + 1] == 0xbb && s[i + 2] == 0xbf) {
            i += 3;
        } else {
            break;
        }
    }
    *p = i;
    return true;
}

/* The token at p, which is not the end: a punctuator, name, number or string. */
static bool lex_token(gql_lexer_t *lx, size_t p, gql_token_t *t)
{
    const unsigned char *s = lx->src;
    unsigned c = s[p];
    int kind = punctuator(c);
    if (kind >= 0) {
        t->kind = (uint8_t)kind;
        lx->pos = p + 1;
        return true;
    }
    if (c == '.' && p + 2 < lx->n && s[p + 1] == '.' && s[p + 2] == '.') {
        t->kind = GT_SPREAD;
        lx->pos = p + 3;
        return true;
    }
    if (c == '"')
        return is_triple_quote(lx, p) ? lex_block_string(lx, p, t) : lex_string(lx, p, t);
    if (c == '-' || is_digit(c))
        return lex_number(lx, p, t);
    if (is_name_start(c)) {
        t->kind = GT_NAME;
        lx->pos = read_name(lx, p);
        return true;
    }
    if (c == '\'')
        return fail(lx, p, "Unexpected single quote character ('), did you mean to use a double quote (\")?");
    return fail_char(lx, p, "Unexpected character");
}

bool gql_lex_next(gql_lexer_t *lx, gql_token_t *t)
{
    size_t p = lx->pos;
    if (!skip_ignored(lx, &p))
        return false;
    *t = (gql_token_t){.loc = loc_at(lx, p), .text = (const char *)lx->src + p};
    if (p >= lx->n) {
        lx->pos = p;
        t->kind = GT_EOF;
        return true;
    }
    /* counted before it is read, so a long token past the limit is not read at all */
    if (lx->max_tokens && lx->ntokens >= lx->max_tokens) {
        gql_syntax_error(lx->err, t->loc, "Document contains more than %u tokens. Parsing aborted.",
                         (unsigned)lx->max_tokens);
        return false;
    }
    lx->ntokens++;
    if (!lex_token(lx, p, t))
        return false;
    t->len = lx->pos - p;
    return true;
}

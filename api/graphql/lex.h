/*
 * The GraphQL lexer (spec October 2021, section 2.1), internal to the parser (api/graphql/parse.c):
 * it hands out one token at a time, skipping ignored tokens, checking the source is well-formed
 * UTF-8 without control characters as it goes, decoding string values into the arena, and
 * counting tokens against the document's limit.
 */
#ifndef CRMD_API_GRAPHQL_LEX_H
#define CRMD_API_GRAPHQL_LEX_H

#include "api/graphql/ast.h"

enum gql_tok_kind {
    GT_EOF = 0,
    /* punctuators: ! $ & ( ) ... : = @ [ ] { | } */
    GT_BANG,
    GT_DOLLAR,
    GT_AMP,
    GT_PAREN_L,
    GT_PAREN_R,
    GT_SPREAD,
    GT_COLON,
    GT_EQUALS,
    GT_AT,
    GT_BRACKET_L,
    GT_BRACKET_R,
    GT_BRACE_L,
    GT_PIPE,
    GT_BRACE_R,
    GT_NAME,
    GT_INT,
    GT_FLOAT,
    GT_STRING,
    GT_BLOCK_STRING,
};

typedef struct gql_token {
    uint8_t kind; /* enum gql_tok_kind */
    gql_loc_t loc;
    const char *text; /* the token as written, text[0..len) in the source */
    size_t len;
    const char *s; /* GT_STRING, GT_BLOCK_STRING: the value (arena, NUL-terminated), n bytes */
    size_t n;
} gql_token_t;

typedef struct gql_lexer {
    arena_t *a;
    const unsigned char *src;
    size_t n, pos; /* source bytes, and where the next token is looked for */
    uint32_t line;
    size_t line_start; /* offset of the current line's first byte */
    size_t col_pos;    /* a position on the current line whose column is col (columns count code points) */
    uint32_t col;
    uint32_t ntokens, max_tokens; /* max_tokens 0: unbounded */
    buf_t scratch;                /* a string value being decoded */
    gql_error_t *err;
} gql_lexer_t;

/* Starts lexing src[0..n); errors go to err. */
void gql_lex_init(gql_lexer_t *lx, arena_t *a, const char *src, size_t n, uint32_t max_tokens,
                  gql_error_t *err);

/* Reads the next token into t (GT_EOF at the end, again on every later call); false with the
 * lexer's err set on a lexical error or when the token limit is passed. */
bool gql_lex_next(gql_lexer_t *lx, gql_token_t *t);

/* Frees the lexer's scratch memory (tokens and values stay, in the arena). */
void gql_lex_free(gql_lexer_t *lx);

/* Sets err to "Syntax Error: " and the formatted text (cut at a UTF-8 boundary when too long), at loc. */
__attribute__((format(printf, 3, 4))) void gql_syntax_error(gql_error_t *err, gql_loc_t loc, const char *fmt,
                                                            ...);

/* Writes a quotable excerpt of s[0..n) at out (NUL-terminated, at most cap - 1 bytes): whole
 * code points only, stopping at a control character other than tab or at ill-formed UTF-8,
 * with "..." when cut short. Returns out. */
char *gql_excerpt(char *out, size_t cap, const char *s, size_t n);

#endif

/*
 * Validation of an executable document against a schema: every rule of section 5 of the GraphQL
 * spec (October 2021) that applies to executable documents, with graphql-js's messages. Also
 * the choice of the operation to run (GetOperation, section 6.1). Rule 5.1.1 (executable
 * definitions only) is the parser's: it refuses anything else.
 *
 * One walk over each definition (operations and fragments, each on its own, as graphql-js
 * visits them) checks what a node can say about itself: fields, arguments, values, directives,
 * type conditions, leaf selections; it records each definition's variable usages and fragment
 * spreads. Then the rules over the document: names unique, fragment cycles (before anything
 * follows spreads), variables per operation through the fragments it reaches, unused
 * fragments, subscription roots, and field merging (5.3.2). Nothing recurses through spreads
 * but field merging, which is bounded.
 *
 * Field merging follows the spec's FieldsInSetCanMerge, but checks all the fields of a response
 * name against the first rather than pair by pair (each check is an equivalence, so this finds a
 * conflict whenever some pair has one), in two passes: the same response shape over all fields
 * of a name, down through all their subfields; the same field and arguments over the fields
 * whose parents may be the same object, down through theirs. A set checked once is remembered,
 * so a fragment spread in many places costs once; the work is metered (MERGE_BUDGET) and the
 * nesting it follows through fragments bounded (MAX_MERGE_DEPTH): past either, the document is
 * refused with "Validation aborted: ...", as graphql-js aborts past its own budget.
 *
 * Where we differ from graphql-js: errors about an operation's or fragment's name, a spread's
 * fragment name or a type condition point at the node that holds it (the tree keeps no location
 * for names); a value error inside an argument (an input object's field, a list's item) says
 * where (` at "input.name"`) and extensions.field names the member; DateTime, Date and Decimal
 * literals are checked, and a Float literal must be finite.
 */
#include "api/graphql/types.h"
#include "core/timestamp.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CODE "GRAPHQL_VALIDATION_FAILED"
/* Selection sets nested through fragments that field merging follows (the parser bounds each
 * definition's own nesting, not what spreads add up to). */
#define MAX_MERGE_DEPTH 256
/* Fields collected and compared by field merging, at most. */
#define MERGE_BUDGET 250000
/* Segments of a value's place kept for messages. */
#define VPATH_MAX 32
/* Bytes of a value quoted in a message. */
#define PRINT_MAX 200

/* ---- small containers in the arena ---- */

typedef struct vec {
    void *v;
    size_t n, cap;
} vec_t;

static void *vpush(arena_t *a, vec_t *v, size_t size)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void *nv = arena_alloc(a, cap * size);
        if (v->n)
            memcpy(nv, v->v, v->n * size);
        v->v = nv;
        v->cap = cap;
    }
    return (char *)v->v + v->n++ * size;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

/* A string -> index map of fixed capacity (twice the names it will hold). */
typedef struct strmap {
    const char **k;
    int *v;
    size_t mask;
} strmap_t;

static void sm_init(arena_t *a, strmap_t *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    m->k = arena_alloc(a, cap * sizeof(*m->k));
    memset(m->k, 0, cap * sizeof(*m->k));
    m->v = arena_alloc(a, cap * sizeof(*m->v));
    m->mask = cap - 1;
}

static size_t sm_slot(const strmap_t *m, const char *key)
{
    size_t i = hash_bytes(0xcbf29ce484222325ULL, key, strlen(key)) & m->mask;
    while (m->k[i] && strcmp(m->k[i], key) != 0)
        i = (i + 1) & m->mask;
    return i;
}

static int sm_find(const strmap_t *m, const char *key)
{
    size_t i = sm_slot(m, key);
    return m->k[i] ? m->v[i] : -1;
}

/* Adds key -> val unless present; returns the value already there, or -1. */
static int sm_add(strmap_t *m, const char *key, int val)
{
    size_t i = sm_slot(m, key);
    if (m->k[i])
        return m->v[i];
    m->k[i] = key;
    m->v[i] = val;
    return -1;
}

/* A set of sets of pointers (sorted on the way in), to remember what was checked. */
typedef struct memo_node {
    struct memo_node *next;
    uint64_t hash;
    size_t n;
    const void **p;
} memo_node_t;

#define MEMO_BUCKETS 1024

typedef struct memo {
    memo_node_t **b;
} memo_t;

static int ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const void *const *)a, y = (uintptr_t) * (const void *const *)b;
    return x < y ? -1 : x > y;
}

/* Adds the set p[0..n) (reordered); false when it was there already. */
static bool memo_add(arena_t *a, memo_t *m, const void **p, size_t n)
{
    if (!m->b) {
        m->b = arena_alloc(a, MEMO_BUCKETS * sizeof(*m->b));
        memset(m->b, 0, MEMO_BUCKETS * sizeof(*m->b));
    }
    qsort(p, n, sizeof(*p), ptr_cmp);
    uint64_t h = hash_bytes(0xcbf29ce484222325ULL, p, n * sizeof(*p));
    memo_node_t **slot = &m->b[h % MEMO_BUCKETS];
    for (memo_node_t *x = *slot; x; x = x->next)
        if (x->hash == h && x->n == n && memcmp(x->p, p, n * sizeof(*p)) == 0)
            return false;
    memo_node_t *x = arena_alloc(a, sizeof(*x));
    *x = (memo_node_t){*slot, h, n, p};
    *slot = x;
    return true;
}

/* ---- the validation context ---- */

typedef struct var_use {
    const char *name;
    gql_loc_t loc;
    const gql_type_t *type; /* the type its place expects; NULL when unknown */
    bool loc_default;       /* the argument or input field there has a default value */
} var_use_t;

typedef struct spread_ref {
    gql_loc_t loc;
    int target; /* the fragment's definition index; -1 when undefined */
} spread_ref_t;

typedef struct def_info {
    vec_t uses;                /* var_use_t */
    vec_t spreads;             /* spread_ref_t, in document order */
    const gql_type_t *type;    /* an operation's root type, a fragment's composite type condition */
    const gql_type_t **vtypes; /* an operation's variable types (NULL when unknown or not input) */
    bool used;                 /* a fragment some operation reaches */
    bool cyclic;               /* a fragment on a spread cycle */
} def_info_t;

typedef struct vseg {
    const char *key; /* NULL: a list index */
    size_t index;
} vseg_t;

/* A field in a set that field merging checks. */
typedef struct fent {
    const gql_selection_t *node;
    const gql_type_t *parent; /* the type it is selected on; NULL when unknown */
    const gql_field_t *def;
    const struct fent *origin; /* the field whose selection set holds it; NULL at the top */
} fent_t;

typedef struct cframe {
    const gql_selset_t *ss;
    size_t i;
    const gql_type_t *parent;
} cframe_t;

typedef struct vctx {
    const gql_schema_t *s;
    const gql_doc_t *doc;
    gql_errors_t *errs;
    arena_t *a;
    bool stop; /* the error list is full */
    def_info_t *info;
    int cur; /* the definition walked */
    strmap_t frags;
    vseg_t vpath[VPATH_MAX];
    size_t vdepth;
    /* field merging */
    uint32_t *stamp; /* per definition: the collection that last expanded the fragment */
    uint32_t gen;
    size_t budget;
    bool aborted;
    gql_loc_t root_loc;
    vec_t cstack, ustack, sbuf; /* cframe_t, cframe_t, int: collect()'s scratch */
    memo_t memo_shape, memo_parents, reported;
} vctx_t;

/* ---- messages ---- */

__attribute__((format(printf, 2, 3))) static const char *fmt(vctx_t *c, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    const char *out = arena_vprintf(c->a, f, ap);
    va_end(ap);
    return out;
}

static const char *buf_to_arena(vctx_t *c, buf_t *b)
{
    const char *s = arena_strndup(c->a, b->data ? b->data : "", b->len);
    buf_free(b);
    return s;
}

__attribute__((format(printf, 4, 5))) static gql_err_t *verr(vctx_t *c, const gql_loc_t *locs, size_t nlocs,
                                                             const char *f, ...)
{
    if (c->stop)
        return NULL;
    buf_t b = BUF_INIT;
    va_list ap;
    va_start(ap, f);
    buf_vprintf(&b, f, ap);
    va_end(ap);
    gql_err_t *e = gql_errors_add(c->errs, locs, nlocs, "%s", buf_cstr(&b));
    buf_free(&b);
    if (!e) {
        c->stop = true;
        return NULL;
    }
    e->code = CODE;
    return e;
}

static const char *tstr(vctx_t *c, const gql_type_t *t)
{
    buf_t b = BUF_INIT;
    gql_type_print(&b, t);
    return buf_to_arena(c, &b);
}

static void print_string(buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        unsigned cp = ch;
        if (ch == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9F)
            cp = (unsigned char)s[++i]; /* a C1 control, escaped as graphql-js does */
        else if (ch >= 0x20 && ch != '"' && ch != '\\' && ch != 0x7F) {
            buf_putc(b, (char)ch);
            continue;
        }
        switch (cp) {
        case '"':
            buf_append_lit(b, "\\\"");
            break;
        case '\\':
            buf_append_lit(b, "\\\\");
            break;
        case '\b':
            buf_append_lit(b, "\\b");
            break;
        case '\t':
            buf_append_lit(b, "\\t");
            break;
        case '\n':
            buf_append_lit(b, "\\n");
            break;
        case '\f':
            buf_append_lit(b, "\\f");
            break;
        case '\r':
            buf_append_lit(b, "\\r");
            break;
        default:
            buf_append_lit(b, "\\u00");
            buf_putc(b, hex[cp >> 4]);
            buf_putc(b, hex[cp & 15]);
        }
    }
    buf_putc(b, '"');
}

/* v as GraphQL prints it ("[1, 2]", "{a: \"x\"}"). */
static void print_value(buf_t *b, const gql_value_t *v)
{
    if (b->len > PRINT_MAX)
        return;
    switch (v->kind) {
    case GV_VARIABLE:
        buf_putc(b, '$');
        buf_append(b, v->s, strlen(v->s));
        break;
    case GV_INT:
    case GV_FLOAT:
    case GV_ENUM:
        buf_append(b, v->s, strlen(v->s));
        break;
    case GV_STRING:
        print_string(b, v->s, v->n);
        break;
    case GV_BOOL:
        if (v->b)
            buf_append_lit(b, "true");
        else
            buf_append_lit(b, "false");
        break;
    case GV_NULL:
        buf_append_lit(b, "null");
        break;
    case GV_LIST:
        buf_putc(b, '[');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                buf_append_lit(b, ", ");
            print_value(b, v->items[i]);
        }
        buf_putc(b, ']');
        break;
    case GV_OBJECT:
        buf_putc(b, '{');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                buf_append_lit(b, ", ");
            buf_append(b, v->fields[i].name, strlen(v->fields[i].name));
            buf_append_lit(b, ": ");
            print_value(b, v->fields[i].value);
        }
        buf_putc(b, '}');
        break;
    }
}

static const char *vstr(vctx_t *c, const gql_value_t *v)
{
    buf_t b = BUF_INIT;
    print_value(&b, v);
    if (b.len > PRINT_MAX) {
        size_t n = PRINT_MAX;
        while (n > 0 && ((unsigned char)b.data[n] & 0xC0) == 0x80)
            n--; /* not inside a UTF-8 sequence */
        b.len = n;
        buf_append_lit(&b, "...");
    }
    return buf_to_arena(c, &b);
}

/* ---- suggestions ("Did you mean ...?"), as graphql-js makes them ---- */

/* graphql-js's naturalCompare: runs of digits compare as numbers. */
static int natural_cmp(const char *a, const char *b)
{
    size_t i = 0, j = 0, na = strlen(a), nb = strlen(b);
    while (i < na && j < nb) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[j];
        if (x >= '0' && x <= '9' && y >= '0' && y <= '9') {
            uint64_t xa = 0, yb = 0;
            do {
                xa = xa < UINT64_MAX / 16 ? xa * 10 + (uint64_t)(x - '0') : xa;
                x = (unsigned char)a[++i];
            } while (x >= '0' && x <= '9' && xa > 0);
            do {
                yb = yb < UINT64_MAX / 16 ? yb * 10 + (uint64_t)(y - '0') : yb;
                y = (unsigned char)b[++j];
            } while (y >= '0' && y <= '9' && yb > 0);
            if (xa != yb)
                return xa < yb ? -1 : 1;
        } else {
            if (x != y)
                return x < y ? -1 : 1;
            i++;
            j++;
        }
    }
    return (na > nb) - (na < nb);
}

static unsigned char lower(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
}

/* graphql-js's LexicalDistance: case-insensitive Damerau-Levenshtein (1 for a case change
 * only); -1 when above threshold. */
static int lexical_distance(vctx_t *c, const char *input, const char *option, int threshold)
{
    if (strcmp(input, option) == 0)
        return 0;
    const char *a = option, *b = input;
    size_t na = strlen(a), nb = strlen(b);
    if (na == nb) {
        size_t i = 0;
        while (i < na && lower((unsigned char)a[i]) == lower((unsigned char)b[i]))
            i++;
        if (i == na)
            return 1;
    }
    if (na < nb) {
        const char *t = a;
        a = b;
        b = t;
        size_t tn = na;
        na = nb;
        nb = tn;
    }
    if (na - nb > (size_t)threshold)
        return -1;
    int *rows = arena_alloc(c->a, 3 * (nb + 1) * sizeof(int));
    for (size_t j = 0; j <= nb; j++)
        rows[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int *up = rows + ((i - 1) % 3) * (nb + 1), *cur = rows + (i % 3) * (nb + 1);
        int smallest = cur[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int cost = lower((unsigned char)a[i - 1]) == lower((unsigned char)b[j - 1]) ? 0 : 1;
            int cell = MIN(up[j] + 1, MIN(cur[j - 1] + 1, up[j - 1] + cost));
            if (i > 1 && j > 1 && lower((unsigned char)a[i - 1]) == lower((unsigned char)b[j - 2]) &&
                lower((unsigned char)a[i - 2]) == lower((unsigned char)b[j - 1])) {
                int dd = rows[((i - 2) % 3) * (nb + 1) + j - 2];
                cell = MIN(cell, dd + 1);
            }
            if (cell < smallest)
                smallest = cell;
            cur[j] = cell;
        }
        if (smallest > threshold)
            return -1;
    }
    int d = rows[(na % 3) * (nb + 1) + nb];
    return d <= threshold ? d : -1;
}

typedef struct sugg {
    const char *name;
    int dist;
} sugg_t;

static int sugg_cmp(const void *x, const void *y)
{
    const sugg_t *a = x, *b = y;
    if (a->dist != b->dist)
        return a->dist - b->dist;
    return natural_cmp(a->name, b->name);
}

/* Collects candidate names, then renders " Did you mean [sub ]"a", "b", or "c"?" (or ""). */
typedef struct suggester {
    vctx_t *c;
    const char *input;
    int threshold;
    vec_t found; /* sugg_t */
} suggester_t;

static void sg_init(suggester_t *g, vctx_t *c, const char *input)
{
    *g = (suggester_t){.c = c, .input = input, .threshold = (int)(strlen(input) * 4 / 10) + 1};
}

static void sg_offer(suggester_t *g, const char *name)
{
    int d = lexical_distance(g->c, g->input, name, g->threshold);
    if (d >= 0)
        *(sugg_t *)vpush(g->c->a, &g->found, sizeof(sugg_t)) = (sugg_t){name, d};
}

static const char *did_you_mean(vctx_t *c, const char *sub, const char *const *names, size_t n)
{
    if (n == 0)
        return "";
    buf_t b = BUF_INIT;
    buf_append_lit(&b, " Did you mean ");
    if (sub)
        buf_printf(&b, "%s ", sub);
    if (n > 5)
        n = 5;
    for (size_t i = 0; i < n; i++) {
        if (i && n > 2)
            buf_append_lit(&b, ", ");
        else if (i)
            buf_putc(&b, ' ');
        if (i && i == n - 1)
            buf_append_lit(&b, "or ");
        buf_printf(&b, "\"%s\"", names[i]);
    }
    buf_putc(&b, '?');
    return buf_to_arena(c, &b);
}

static const char *sg_render(suggester_t *g, const char *sub)
{
    sugg_t *s = g->found.v;
    if (g->found.n > 1)
        qsort(s, g->found.n, sizeof(*s), sugg_cmp);
    const char *names[5];
    size_t n = MIN(g->found.n, 5);
    for (size_t i = 0; i < n; i++)
        names[i] = s[i].name;
    return did_you_mean(g->c, sub, names, n);
}

/* ---- types ---- */

static bool is_abstract(const gql_type_t *t)
{
    return t && (t->kind == GK_INTERFACE || t->kind == GK_UNION);
}

static bool same_type(const gql_type_t *a, const gql_type_t *b)
{
    while (a && b && a->kind == b->kind && (a->kind == GK_LIST || a->kind == GK_NON_NULL)) {
        a = a->of;
        b = b->of;
    }
    if (!a || !b || a->kind != b->kind)
        return a == b;
    return a == b || (a->name && b->name && strcmp(a->name, b->name) == 0);
}

/* Some object type is possible in both (the spec's GetPossibleTypes intersection). */
static bool types_overlap(const gql_type_t *a, const gql_type_t *b)
{
    if (same_type(a, b))
        return true;
    if (is_abstract(a)) {
        if (!is_abstract(b))
            return gql_is_possible(a, b);
        for (size_t i = 0; i < a->npossible; i++)
            if (gql_is_possible(b, a->possible[i]))
                return true;
        return false;
    }
    return is_abstract(b) && gql_is_possible(b, a);
}

static const gql_type_t *composite_or_null(const gql_type_t *t)
{
    return gql_is_composite(t) ? t : NULL;
}

/* ---- values (5.6) ---- */

static void use_var(vctx_t *c, const gql_value_t *v, const gql_type_t *type, bool loc_default)
{
    var_use_t *u = vpush(c->a, &c->info[c->cur].uses, sizeof(var_use_t));
    *u = (var_use_t){v->s, v->loc, type, loc_default};
}

/* Records the variables of a value whose place has no known type. */
static void scan_vars(vctx_t *c, const gql_value_t *v)
{
    if (v->kind == GV_VARIABLE)
        use_var(c, v, NULL, false);
    else if (v->kind == GV_LIST)
        for (size_t i = 0; i < v->n; i++)
            scan_vars(c, v->items[i]);
    else if (v->kind == GV_OBJECT)
        for (size_t i = 0; i < v->n; i++)
            scan_vars(c, v->fields[i].value);
}

static void vpath_push(vctx_t *c, const char *key, size_t index)
{
    if (c->vdepth < VPATH_MAX)
        c->vpath[c->vdepth] = (vseg_t){key, index};
    c->vdepth++;
}

static void vpath_pop(vctx_t *c)
{
    c->vdepth--;
}

/* A value error: head, where in the argument when nested (` at "input.name"`), tail, hint. */
static gql_err_t *value_err(vctx_t *c, gql_loc_t loc, const char *head, const char *tail, const char *hint)
{
    buf_t where = BUF_INIT;
    const char *field = NULL;
    size_t depth = MIN(c->vdepth, VPATH_MAX);
    for (size_t i = 0; i < depth; i++)
        if (c->vpath[i].key)
            field = c->vpath[i].key;
    if (c->vdepth > 1) {
        buf_append_lit(&where, " at \"");
        for (size_t i = 0; i < depth; i++) {
            if (!c->vpath[i].key)
                buf_printf(&where, "[%zu]", c->vpath[i].index);
            else if (i)
                buf_printf(&where, ".%s", c->vpath[i].key);
            else
                buf_printf(&where, "%s", c->vpath[i].key);
        }
        if (c->vdepth > depth)
            buf_append_lit(&where, "...");
        buf_putc(&where, '"');
    }
    gql_err_t *e = verr(c, &loc, 1, "%s%.*s%s%s", head, (int)where.len, where.data ? where.data : "", tail,
                        hint ? hint : "");
    buf_free(&where);
    if (e)
        e->field = field;
    return e;
}

static bool int32_text(const char *s)
{
    const char *d = s + (*s == '-');
    size_t n = strlen(d);
    if (n > 10)
        return false;
    long long v = strtoll(s, NULL, 10);
    return v >= INT32_MIN && v <= INT32_MAX;
}

static bool finite_text(const char *s)
{
    return isfinite(strtod(s, NULL));
}

static void check_scalar(vctx_t *c, const gql_value_t *v, const gql_type_t *loct, const gql_type_t *t)
{
    const char *rule = NULL; /* a custom scalar's requirement */
    switch (t->scalar) {
    case GSC_INT:
        if (v->kind != GV_INT)
            value_err(c, v->loc, fmt(c, "Int cannot represent non-integer value: %s", vstr(c, v)), "", NULL);
        else if (!int32_text(v->s))
            value_err(c, v->loc, fmt(c, "Int cannot represent non 32-bit signed integer value: %s", v->s), "",
                      NULL);
        return;
    case GSC_FLOAT:
        if ((v->kind != GV_INT && v->kind != GV_FLOAT) || !finite_text(v->s))
            value_err(c, v->loc, fmt(c, "Float cannot represent non numeric value: %s", vstr(c, v)), "",
                      NULL);
        return;
    case GSC_STRING:
        if (v->kind != GV_STRING)
            value_err(c, v->loc, fmt(c, "String cannot represent a non string value: %s", vstr(c, v)), "",
                      NULL);
        return;
    case GSC_BOOLEAN:
        if (v->kind != GV_BOOL)
            value_err(c, v->loc, fmt(c, "Boolean cannot represent a non boolean value: %s", vstr(c, v)), "",
                      NULL);
        return;
    case GSC_ID:
        if (v->kind != GV_STRING && v->kind != GV_INT)
            value_err(c, v->loc,
                      fmt(c, "ID cannot represent a non-string and non-integer value: %s", vstr(c, v)), "",
                      NULL);
        return;
    case GSC_DATETIME: {
        ts_t ts;
        if (v->kind == GV_STRING && ts_parse_rfc3339(v->s, v->n, &ts))
            return;
        rule = "DateTime must be an RFC 3339 timestamp such as \"2026-01-17T10:30:00Z\".";
        break;
    }
    case GSC_DATE: {
        ts_t ts;
        if (v->kind == GV_STRING && ts_parse_date(v->s, v->n, &ts))
            return;
        rule = "Date must be a calendar date such as \"2026-01-17\".";
        break;
    }
    case GSC_DECIMAL:
        if (v->kind == GV_INT || v->kind == GV_FLOAT ||
            (v->kind == GV_STRING && gql_numeric_text(v->s, v->n)))
            return;
        rule = "Decimal must be a number or a numeric string such as \"12.50\".";
        break;
    default:
        return;
    }
    value_err(c, v->loc, fmt(c, "Expected value of type \"%s\", found %s", tstr(c, loct), vstr(c, v)),
              fmt(c, "; %s", rule), NULL);
}

static void check_enum(vctx_t *c, const gql_value_t *v, const gql_type_t *t)
{
    if (v->kind == GV_ENUM)
        for (size_t i = 0; i < t->nenums; i++)
            if (strcmp(t->enums[i].name, v->s) == 0)
                return;
    const char *printed = vstr(c, v);
    suggester_t g;
    sg_init(&g, c, printed);
    for (size_t i = 0; i < t->nenums; i++)
        sg_offer(&g, t->enums[i].name);
    const char *hint = sg_render(&g, "the enum value");
    if (v->kind != GV_ENUM)
        value_err(c, v->loc, fmt(c, "Enum \"%s\" cannot represent non-enum value: %s", t->name, printed), ".",
                  hint);
    else
        value_err(c, v->loc, fmt(c, "Value \"%s\" does not exist in \"%s\" enum", printed, t->name), ".",
                  hint);
}

static void check_value(vctx_t *c, const gql_value_t *v, const gql_type_t *loct, const gql_type_t *t,
                        bool loc_default);

static void check_object(vctx_t *c, const gql_value_t *v, const gql_type_t *t)
{
    strmap_t seen;
    if (v->n > 1)
        sm_init(c->a, &seen, v->n);
    for (size_t i = 0; i < v->n && !c->stop; i++) {
        const gql_object_field_t *f = &v->fields[i];
        if (v->n > 1) {
            int first = sm_add(&seen, f->name, (int)i);
            if (first >= 0) {
                gql_loc_t locs[2] = {v->fields[first].loc, f->loc};
                gql_err_t *e = verr(c, locs, 2, "There can be only one input field named \"%s\".", f->name);
                if (e)
                    e->field = f->name;
            }
        }
        const gql_input_t *decl = gql_arg_lookup(t->inputs, t->ninputs, f->name);
        if (!decl) {
            suggester_t g;
            sg_init(&g, c, f->name);
            for (size_t j = 0; j < t->ninputs; j++)
                sg_offer(&g, t->inputs[j].name);
            gql_err_t *e =
                value_err(c, f->loc, fmt(c, "Field \"%s\" is not defined by type \"%s\"", f->name, t->name),
                          ".", sg_render(&g, NULL));
            if (e)
                e->field = f->name;
            scan_vars(c, f->value);
            continue;
        }
        vpath_push(c, f->name, 0);
        check_value(c, f->value, decl->type, decl->type, decl->default_value != NULL);
        vpath_pop(c);
    }
    for (size_t j = 0; j < t->ninputs && !c->stop; j++) {
        const gql_input_t *decl = &t->inputs[j];
        if (decl->type->kind != GK_NON_NULL || decl->default_value)
            continue;
        size_t i = 0;
        while (i < v->n && strcmp(v->fields[i].name, decl->name) != 0)
            i++;
        if (i < v->n)
            continue;
        gql_err_t *e = value_err(c, v->loc,
                                 fmt(c, "Field \"%s.%s\" of required type \"%s\" was not provided", t->name,
                                     decl->name, tstr(c, decl->type)),
                                 ".", NULL);
        if (e)
            e->field = decl->name;
    }
}

/*
 * Checks literal v against t, the type expected at its place, loct (which differs when a single
 * value stands for a list: then v is checked against the item type). Variables are recorded
 * with the type of their place.
 */
static void check_value(vctx_t *c, const gql_value_t *v, const gql_type_t *loct, const gql_type_t *t,
                        bool loc_default)
{
    if (c->stop)
        return;
    if (v->kind == GV_VARIABLE) {
        use_var(c, v, t, loc_default);
        return;
    }
    if (!t) {
        scan_vars(c, v);
        return;
    }
    if (v->kind == GV_NULL) {
        if (t->kind == GK_NON_NULL)
            value_err(c, v->loc, fmt(c, "Expected value of type \"%s\", found null", tstr(c, loct)), ".",
                      NULL);
        return;
    }
    if (t->kind == GK_NON_NULL)
        t = t->of;
    if (t->kind == GK_LIST) {
        if (v->kind != GV_LIST) {
            check_value(c, v, loct, t->of, loc_default);
            return;
        }
        for (size_t i = 0; i < v->n && !c->stop; i++) {
            vpath_push(c, NULL, i);
            check_value(c, v->items[i], t->of, t->of, false);
            vpath_pop(c);
        }
        return;
    }
    switch (t->kind) {
    case GK_INPUT_OBJECT:
        if (v->kind == GV_OBJECT)
            check_object(c, v, t);
        else
            value_err(c, v->loc, fmt(c, "Expected value of type \"%s\", found %s", tstr(c, loct), vstr(c, v)),
                      ".", NULL);
        break;
    case GK_ENUM:
        check_enum(c, v, t);
        break;
    case GK_SCALAR:
        check_scalar(c, v, loct, t);
        break;
    default:
        scan_vars(c, v);
    }
}

/* ---- arguments and directives (5.4, 5.7) ---- */

/* Reports each name given more than once: one error naming every place. */
static void unique_args(vctx_t *c, const gql_arg_t *args, size_t n)
{
    if (n < 2)
        return;
    strmap_t m;
    sm_init(c->a, &m, n);
    int *first = arena_alloc(c->a, n * sizeof(int));
    bool dup = false;
    for (size_t i = 0; i < n; i++) {
        int f = sm_add(&m, args[i].name, (int)i);
        first[i] = f < 0 ? (int)i : f;
        dup |= f >= 0;
    }
    for (size_t i = 0; dup && i < n; i++) {
        gql_loc_t locs[GQL_ERR_LOCS];
        size_t nl = 0, count = 0;
        if (first[i] != (int)i)
            continue;
        for (size_t j = i; j < n; j++)
            if (first[j] == (int)i) {
                if (nl < GQL_ERR_LOCS)
                    locs[nl++] = args[j].loc;
                count++;
            }
        gql_err_t *e = count > 1
                           ? verr(c, locs, nl, "There can be only one argument named \"%s\".", args[i].name)
                           : NULL;
        if (e)
            e->field = args[i].name;
    }
}

/* The arguments given to a field (named name, of type parent) or a directive (parent NULL, name
 * "@skip") against their definitions decls. */
static void check_args(vctx_t *c, const gql_arg_t *args, size_t nargs, const gql_input_t *decls,
                       size_t ndecls, const char *parent, const char *name, gql_loc_t at)
{
    unique_args(c, args, nargs);
    for (size_t i = 0; i < nargs && !c->stop; i++) {
        const gql_arg_t *arg = &args[i];
        const gql_input_t *decl = gql_arg_lookup(decls, ndecls, arg->name);
        if (!decl) {
            suggester_t g;
            sg_init(&g, c, arg->name);
            for (size_t j = 0; j < ndecls; j++)
                sg_offer(&g, decls[j].name);
            gql_err_t *e;
            if (parent)
                e = verr(c, &arg->loc, 1, "Unknown argument \"%s\" on field \"%s.%s\".%s", arg->name, parent,
                         name, sg_render(&g, NULL));
            else
                e = verr(c, &arg->loc, 1, "Unknown argument \"%s\" on directive \"%s\".%s", arg->name, name,
                         sg_render(&g, NULL));
            if (e)
                e->field = arg->name;
            scan_vars(c, arg->value);
            continue;
        }
        vpath_push(c, arg->name, 0);
        check_value(c, arg->value, decl->type, decl->type, decl->default_value != NULL);
        vpath_pop(c);
    }
    for (size_t j = 0; j < ndecls && !c->stop; j++) {
        const gql_input_t *decl = &decls[j];
        if (decl->type->kind != GK_NON_NULL || decl->default_value)
            continue;
        size_t i = 0;
        while (i < nargs && strcmp(args[i].name, decl->name) != 0)
            i++;
        if (i < nargs)
            continue;
        gql_err_t *e =
            verr(c, &at, 1, "%s \"%s\" argument \"%s\" of type \"%s\" is required, but it was not provided.",
                 parent ? "Field" : "Directive", name, decl->name, tstr(c, decl->type));
        if (e)
            e->field = decl->name;
    }
}

static void check_directives(vctx_t *c, const gql_directive_t *dirs, size_t n, const char *location)
{
    strmap_t seen;
    if (n > 1)
        sm_init(c->a, &seen, n);
    for (size_t i = 0; i < n && !c->stop; i++) {
        const gql_directive_t *d = &dirs[i];
        const gql_directive_def_t *def = gql_schema_directive(c->s, d->name);
        if (!def) {
            verr(c, &d->loc, 1, "Unknown directive \"@%s\".", d->name);
            for (size_t j = 0; j < d->nargs; j++)
                scan_vars(c, d->args[j].value);
            unique_args(c, d->args, d->nargs);
            continue;
        }
        size_t k = 0;
        while (k < def->nlocations && strcmp(def->locations[k], location) != 0)
            k++;
        if (k == def->nlocations)
            verr(c, &d->loc, 1, "Directive \"@%s\" may not be used on %s.", d->name, location);
        if (n > 1 && !def->repeatable) {
            int first = sm_add(&seen, d->name, (int)i);
            if (first >= 0) {
                gql_loc_t locs[2] = {dirs[first].loc, d->loc};
                verr(c, locs, 2, "The directive \"@%s\" can only be used once at this location.", d->name);
            }
        }
        check_args(c, d->args, d->nargs, def->args, def->nargs, NULL, fmt(c, "@%s", d->name), d->loc);
    }
}

/* ---- selections (5.3.1, 5.3.3, 5.5) ---- */

static void walk_selset(vctx_t *c, const gql_selset_t *ss, const gql_type_t *parent);

static int fragment_index(const vctx_t *c, const char *name)
{
    return sm_find(&c->frags, name);
}

static void unknown_type(vctx_t *c, const char *name, gql_loc_t loc)
{
    suggester_t g;
    sg_init(&g, c, name);
    for (size_t i = 0; i < c->s->ntypes; i++)
        if (c->s->types[i]->name)
            sg_offer(&g, c->s->types[i]->name);
    verr(c, &loc, 1, "Unknown type \"%s\".%s", name, sg_render(&g, NULL));
}

/* graphql-js's suggestions for an unknown field: the types of an abstract parent that have
 * it, else fields of the parent named alike. */
static const char *field_hint(vctx_t *c, const gql_type_t *parent, const char *name)
{
    if (is_abstract(parent)) {
        const char *names[64];
        int count[64];
        bool iface[64];
        size_t n = 0;
        for (size_t i = 0; i < parent->npossible; i++) {
            const gql_type_t *p = parent->possible[i];
            if (!gql_field_lookup(c->s, p, name))
                continue;
            if (n < 64) {
                names[n] = p->name;
                count[n] = 1;
                iface[n++] = false;
            }
            for (size_t j = 0; j < p->ninterfaces; j++) {
                const gql_type_t *it = p->interfaces[j];
                if (!gql_field_lookup(c->s, it, name))
                    continue;
                size_t k = 0;
                while (k < n && strcmp(names[k], it->name) != 0)
                    k++;
                if (k < n) {
                    count[k]++;
                } else if (n < 64) {
                    names[n] = it->name;
                    count[n] = 1;
                    iface[n++] = true;
                }
            }
        }
        /* by usage, interfaces first among equals, then by name (insertion sort: few) */
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0; j--) {
                bool swap = count[j] > count[j - 1] ||
                            (count[j] == count[j - 1] && iface[j] && !iface[j - 1]) ||
                            (count[j] == count[j - 1] && iface[j] == iface[j - 1] &&
                             natural_cmp(names[j], names[j - 1]) < 0);
                if (!swap)
                    break;
                const char *tn = names[j];
                names[j] = names[j - 1];
                names[j - 1] = tn;
                int tc = count[j];
                count[j] = count[j - 1];
                count[j - 1] = tc;
                bool ti = iface[j];
                iface[j] = iface[j - 1];
                iface[j - 1] = ti;
            }
        if (n)
            return did_you_mean(c, "to use an inline fragment on", names, n);
    }
    if (parent->kind != GK_OBJECT && parent->kind != GK_INTERFACE)
        return "";
    suggester_t g;
    sg_init(&g, c, name);
    for (size_t i = 0; i < parent->nfields; i++)
        sg_offer(&g, parent->fields[i].name);
    return sg_render(&g, NULL);
}

static void walk_field(vctx_t *c, const gql_selection_t *sel, const gql_type_t *parent)
{
    check_directives(c, sel->dirs, sel->ndirs, "FIELD");
    const gql_field_t *def = parent ? gql_field_lookup(c->s, parent, sel->name) : NULL;
    if (parent && !def)
        verr(c, &sel->loc, 1, "Cannot query field \"%s\" on type \"%s\".%s", sel->name, parent->name,
             field_hint(c, parent, sel->name));
    if (def) {
        check_args(c, sel->args, sel->nargs, def->args, def->nargs, parent->name, def->name, sel->loc);
    } else {
        unique_args(c, sel->args, sel->nargs);
        for (size_t i = 0; i < sel->nargs; i++)
            scan_vars(c, sel->args[i].value);
    }
    const gql_type_t *sub = NULL;
    if (def) {
        const gql_type_t *nt = gql_named_type(def->type);
        if (gql_is_leaf(nt) && sel->sel.n)
            verr(c, &sel->sel.loc, 1,
                 "Field \"%s\" must not have a selection since type \"%s\" has no subfields.", sel->name,
                 tstr(c, def->type));
        else if (gql_is_composite(nt) && !sel->sel.n)
            verr(c, &sel->loc, 1,
                 "Field \"%s\" of type \"%s\" must have a selection of subfields. Did you mean \"%s { ... "
                 "}\"?",
                 sel->name, tstr(c, def->type), sel->name);
        sub = composite_or_null(nt);
    }
    if (sel->sel.n)
        walk_selset(c, &sel->sel, sub);
}

static void walk_inline(vctx_t *c, const gql_selection_t *sel, const gql_type_t *parent)
{
    check_directives(c, sel->dirs, sel->ndirs, "INLINE_FRAGMENT");
    const gql_type_t *t = parent;
    if (sel->type_cond) {
        const gql_type_t *tc = gql_schema_type(c->s, sel->type_cond);
        t = NULL;
        if (!tc) {
            unknown_type(c, sel->type_cond, sel->loc);
        } else if (!gql_is_composite(tc)) {
            verr(c, &sel->loc, 1, "Fragment cannot condition on non composite type \"%s\".", tc->name);
        } else {
            if (parent && !types_overlap(parent, tc))
                verr(c, &sel->loc, 1,
                     "Fragment cannot be spread here as objects of type \"%s\" can never be of type \"%s\".",
                     parent->name, tc->name);
            t = tc;
        }
    }
    walk_selset(c, &sel->sel, t);
}

static void walk_spread(vctx_t *c, const gql_selection_t *sel, const gql_type_t *parent)
{
    check_directives(c, sel->dirs, sel->ndirs, "FRAGMENT_SPREAD");
    int fi = fragment_index(c, sel->name);
    spread_ref_t *r = vpush(c->a, &c->info[c->cur].spreads, sizeof(spread_ref_t));
    *r = (spread_ref_t){sel->loc, fi};
    if (fi < 0) {
        verr(c, &sel->loc, 1, "Unknown fragment \"%s\".", sel->name);
        return;
    }
    const gql_type_t *ft = c->info[fi].type;
    if (parent && ft && !types_overlap(parent, ft))
        verr(c, &sel->loc, 1,
             "Fragment \"%s\" cannot be spread here as objects of type \"%s\" can never be of type \"%s\".",
             sel->name, parent->name, ft->name);
}

static void walk_selset(vctx_t *c, const gql_selset_t *ss, const gql_type_t *parent)
{
    for (size_t i = 0; i < ss->n && !c->stop; i++) {
        const gql_selection_t *sel = &ss->items[i];
        if (sel->kind == GS_FIELD)
            walk_field(c, sel, parent);
        else if (sel->kind == GS_INLINE)
            walk_inline(c, sel, parent);
        else
            walk_spread(c, sel, parent);
    }
}

/* ---- definitions ---- */

static const char *const op_words[] = {"query", "mutation", "subscription"};
static const char *const op_locations[] = {"QUERY", "MUTATION", "SUBSCRIPTION"};

static const gql_typeref_t *named_ref(const gql_typeref_t *r)
{
    while (r->kind != GTR_NAMED)
        r = r->of;
    return r;
}

static void walk_variables(vctx_t *c, const gql_def_t *d, def_info_t *info)
{
    info->vtypes = arena_alloc(c->a, (d->nvars ? d->nvars : 1) * sizeof(*info->vtypes));
    strmap_t m;
    sm_init(c->a, &m, d->nvars);
    bool dup = false;
    for (size_t i = 0; i < d->nvars; i++)
        dup |= sm_add(&m, d->vars[i].name, (int)i) >= 0;
    for (size_t i = 0; dup && i < d->nvars; i++) {
        if (sm_find(&m, d->vars[i].name) != (int)i)
            continue;
        gql_loc_t locs[GQL_ERR_LOCS];
        size_t nl = 0, count = 0;
        for (size_t j = i; j < d->nvars; j++)
            if (strcmp(d->vars[j].name, d->vars[i].name) == 0) {
                if (nl < GQL_ERR_LOCS)
                    locs[nl++] = (gql_loc_t){d->vars[j].loc.line, d->vars[j].loc.col + 1}; /* the name */
                count++;
            }
        if (count > 1)
            verr(c, locs, nl, "There can be only one variable named \"$%s\".", d->vars[i].name);
    }
    for (size_t i = 0; i < d->nvars && !c->stop; i++) {
        const gql_vardef_t *v = &d->vars[i];
        const gql_type_t *t = gql_type_from_ref(c->s, c->a, v->type);
        info->vtypes[i] = NULL;
        if (!t) {
            unknown_type(c, named_ref(v->type)->name, named_ref(v->type)->loc);
        } else if (!gql_is_input_type(t)) {
            buf_t b = BUF_INIT;
            gql_typeref_print(&b, v->type);
            verr(c, &v->type->loc, 1, "Variable \"$%s\" cannot be non-input type \"%s\".", v->name,
                 buf_to_arena(c, &b));
        } else {
            info->vtypes[i] = t;
        }
        check_directives(c, v->dirs, v->ndirs, "VARIABLE_DEFINITION");
        if (v->def && info->vtypes[i]) {
            vpath_push(c, v->name, 0);
            check_value(c, v->def, t, t, false);
            vpath_pop(c);
        }
    }
}

static void walk_definition(vctx_t *c, int i)
{
    const gql_def_t *d = &c->doc->defs[i];
    def_info_t *info = &c->info[i];
    c->cur = i;
    if (d->kind == GD_FRAGMENT) {
        check_directives(c, d->dirs, d->ndirs, "FRAGMENT_DEFINITION");
        walk_selset(c, &d->sel, info->type);
        return;
    }
    if (!info->type)
        verr(c, &d->loc, 1, "Schema is not configured to execute %s operation.", op_words[d->kind]);
    walk_variables(c, d, info);
    check_directives(c, d->dirs, d->ndirs, op_locations[d->kind]);
    walk_selset(c, &d->sel, info->type);
}

/* Names, type conditions and root types of the definitions (5.2.1.1, 5.2.2.1, 5.5.1.1-3). */
static void index_definitions(vctx_t *c)
{
    const gql_doc_t *doc = c->doc;
    strmap_t ops;
    sm_init(c->a, &c->frags, doc->ndefs);
    sm_init(c->a, &ops, doc->ndefs);
    size_t nops = 0;
    for (size_t i = 0; i < doc->ndefs; i++) {
        const gql_def_t *d = &doc->defs[i];
        if (d->kind != GD_FRAGMENT) {
            nops++;
            c->info[i].type = d->kind == GD_QUERY      ? c->s->query
                              : d->kind == GD_MUTATION ? c->s->mutation
                                                       : c->s->subscription;
            if (!d->name)
                continue;
            int first = sm_add(&ops, d->name, (int)i);
            if (first >= 0) {
                gql_loc_t locs[2] = {doc->defs[first].loc, d->loc};
                verr(c, locs, 2, "There can be only one operation named \"%s\".", d->name);
            }
            continue;
        }
        int first = sm_add(&c->frags, d->name, (int)i);
        if (first >= 0) {
            gql_loc_t locs[2] = {doc->defs[first].loc, d->loc};
            verr(c, locs, 2, "There can be only one fragment named \"%s\".", d->name);
        }
        const gql_type_t *t = gql_schema_type(c->s, d->type_cond);
        if (!t)
            unknown_type(c, d->type_cond, d->loc);
        else if (!gql_is_composite(t))
            verr(c, &d->loc, 1, "Fragment \"%s\" cannot condition on non composite type \"%s\".", d->name,
                 t->name);
        c->info[i].type = composite_or_null(t);
    }
    for (size_t i = 0; nops > 1 && i < doc->ndefs; i++)
        if (doc->defs[i].kind != GD_FRAGMENT && !doc->defs[i].name)
            verr(c, &doc->defs[i].loc, 1, "This anonymous operation must be the only defined operation.");
}

/* ---- fragment cycles (5.5.2.2): an iterative depth-first walk, as graphql-js reports ---- */

typedef struct dfs_frame {
    int frag;
    size_t next;
    bool entered_by_spread; /* a spread on the path leads here (not the walk's start) */
} dfs_frame_t;

static void report_cycle(vctx_t *c, const spread_ref_t *const *path, size_t n, int target)
{
    buf_t via = BUF_INIT;
    gql_loc_t locs[GQL_ERR_LOCS];
    size_t nl = 0;
    for (size_t i = 0; i < n; i++) {
        c->info[path[i]->target].cyclic = true;
        if (nl < GQL_ERR_LOCS)
            locs[nl++] = path[i]->loc;
        if (i + 1 < n)
            buf_printf(&via, "%s\"%s\"", i ? ", " : "", c->doc->defs[path[i]->target].name);
    }
    const char *name = c->doc->defs[target].name;
    if (via.len)
        verr(c, locs, nl, "Cannot spread fragment \"%s\" within itself via %.*s.", name, (int)via.len,
             via.data);
    else
        verr(c, locs, nl, "Cannot spread fragment \"%s\" within itself.", name);
    buf_free(&via);
}

static void fragment_cycles(vctx_t *c)
{
    size_t n = c->doc->ndefs;
    bool *visited = arena_alloc(c->a, n * sizeof(bool));
    long *on_path = arena_alloc(c->a, n * sizeof(long)); /* index into path, or -1 */
    memset(visited, 0, n * sizeof(bool));
    for (size_t i = 0; i < n; i++)
        on_path[i] = -1;
    vec_t stack = {0}, path = {0}; /* dfs_frame_t, const spread_ref_t * */
    for (size_t start = 0; start < n && !c->stop; start++) {
        const gql_def_t *d = &c->doc->defs[start];
        if (d->kind != GD_FRAGMENT || fragment_index(c, d->name) != (int)start || visited[start])
            continue;
        visited[start] = true;
        if (!c->info[start].spreads.n)
            continue;
        on_path[start] = 0;
        *(dfs_frame_t *)vpush(c->a, &stack, sizeof(dfs_frame_t)) = (dfs_frame_t){(int)start, 0, false};
        while (stack.n) {
            dfs_frame_t *f = &((dfs_frame_t *)stack.v)[stack.n - 1];
            const def_info_t *fi = &c->info[f->frag];
            if (f->next == fi->spreads.n) {
                on_path[f->frag] = -1;
                if (f->entered_by_spread)
                    path.n--;
                stack.n--;
                continue;
            }
            const spread_ref_t *sp = &((const spread_ref_t *)fi->spreads.v)[f->next++];
            int t = sp->target;
            if (t < 0)
                continue;
            *(const spread_ref_t **)vpush(c->a, &path, sizeof(sp)) = sp;
            if (on_path[t] >= 0) {
                const spread_ref_t *const *p = path.v;
                report_cycle(c, p + on_path[t], path.n - (size_t)on_path[t], t);
                path.n--;
                continue;
            }
            if (visited[t] || !c->info[t].spreads.n) {
                visited[t] = true;
                path.n--;
                continue;
            }
            visited[t] = true;
            on_path[t] = (long)path.n;
            *(dfs_frame_t *)vpush(c->a, &stack, sizeof(dfs_frame_t)) = (dfs_frame_t){t, 0, true};
        }
    }
}

/* ---- variables per operation (5.8.3-5.8.5) and used fragments (5.5.1.4) ---- */

/* The spec's AreTypesCompatible. */
static bool types_compatible(const gql_type_t *var, const gql_type_t *loc)
{
    for (;;) {
        if (loc->kind == GK_NON_NULL) {
            if (var->kind != GK_NON_NULL)
                return false;
            var = var->of;
            loc = loc->of;
        } else if (var->kind == GK_NON_NULL) {
            var = var->of;
        } else if (loc->kind == GK_LIST) {
            if (var->kind != GK_LIST)
                return false;
            var = var->of;
            loc = loc->of;
        } else if (var->kind == GK_LIST) {
            return false;
        } else {
            return same_type(var, loc);
        }
    }
}

/* The spec's IsVariableUsageAllowed. */
static bool usage_allowed(const gql_vardef_t *vd, const gql_type_t *vt, const var_use_t *u)
{
    const gql_type_t *lt = u->type;
    if (lt->kind == GK_NON_NULL && vt->kind != GK_NON_NULL) {
        bool var_default = vd->def && vd->def->kind != GV_NULL;
        if (!var_default && !u->loc_default)
            return false;
        return types_compatible(vt, lt->of);
    }
    return types_compatible(vt, lt);
}

static void check_usage(vctx_t *c, int op, const strmap_t *vars, bool *used, const var_use_t *u)
{
    const gql_def_t *d = &c->doc->defs[op];
    int vi = sm_find(vars, u->name);
    if (vi < 0) {
        gql_loc_t locs[2] = {u->loc, d->loc};
        if (d->name)
            verr(c, locs, 2, "Variable \"$%s\" is not defined by operation \"%s\".", u->name, d->name);
        else
            verr(c, locs, 2, "Variable \"$%s\" is not defined.", u->name);
        return;
    }
    used[vi] = true;
    const gql_type_t *vt = c->info[op].vtypes[vi];
    if (!u->type || !vt || usage_allowed(&d->vars[vi], vt, u))
        return;
    gql_loc_t locs[2] = {d->vars[vi].loc, u->loc};
    verr(c, locs, 2, "Variable \"$%s\" of type \"%s\" used in position expecting type \"%s\".", u->name,
         tstr(c, vt), tstr(c, u->type));
}

static void operation_scope(vctx_t *c, int op, uint32_t *mark)
{
    const gql_def_t *d = &c->doc->defs[op];
    strmap_t vars;
    sm_init(c->a, &vars, d->nvars);
    for (size_t i = 0; i < d->nvars; i++)
        sm_add(&vars, d->vars[i].name, (int)i);
    bool *used = arena_alloc(c->a, (d->nvars ? d->nvars : 1) * sizeof(bool));
    memset(used, 0, (d->nvars ? d->nvars : 1) * sizeof(bool));
    /* the fragments the operation reaches, each once: a worklist, no recursion */
    vec_t work = {0};
    *(int *)vpush(c->a, &work, sizeof(int)) = op;
    for (size_t w = 0; w < work.n && !c->stop; w++) {
        const def_info_t *fi = &c->info[((int *)work.v)[w]];
        for (size_t i = 0; i < fi->uses.n; i++)
            check_usage(c, op, &vars, used, &((const var_use_t *)fi->uses.v)[i]);
        for (size_t i = 0; i < fi->spreads.n; i++) {
            int t = ((const spread_ref_t *)fi->spreads.v)[i].target;
            if (t < 0 || mark[t] == (uint32_t)op + 1)
                continue;
            mark[t] = (uint32_t)op + 1;
            c->info[t].used = true;
            *(int *)vpush(c->a, &work, sizeof(int)) = t;
        }
    }
    for (size_t i = 0; i < d->nvars && !c->stop; i++) {
        if (used[i] || sm_find(&vars, d->vars[i].name) != (int)i)
            continue;
        if (d->name)
            verr(c, &d->vars[i].loc, 1, "Variable \"$%s\" is never used in operation \"%s\".",
                 d->vars[i].name, d->name);
        else
            verr(c, &d->vars[i].loc, 1, "Variable \"$%s\" is never used.", d->vars[i].name);
    }
}

static void unused_fragments(vctx_t *c)
{
    for (size_t i = 0; i < c->doc->ndefs && !c->stop; i++) {
        const gql_def_t *d = &c->doc->defs[i];
        if (d->kind == GD_FRAGMENT && !c->info[fragment_index(c, d->name)].used)
            verr(c, &d->loc, 1, "Fragment \"%s\" is never used.", d->name);
    }
}

/* ---- subscriptions: a single root field (5.2.3.1) ---- */

static void subscription_root(vctx_t *c, int op)
{
    const gql_def_t *d = &c->doc->defs[op];
    const gql_type_t *root = c->info[op].type;
    vec_t keys = {0}, extra = {0}, stack = {0}; /* const char *, gql_loc_t, cframe_t */
    bool *seen = arena_alloc(c->a, c->doc->ndefs * sizeof(bool));
    memset(seen, 0, c->doc->ndefs * sizeof(bool));
    *(cframe_t *)vpush(c->a, &stack, sizeof(cframe_t)) = (cframe_t){&d->sel, 0, root};
    while (stack.n && !c->stop) {
        cframe_t *f = &((cframe_t *)stack.v)[stack.n - 1];
        if (f->i == f->ss->n) {
            stack.n--;
            continue;
        }
        const gql_selection_t *sel = &f->ss->items[f->i++];
        if (!gql_directives_include(sel->dirs, sel->ndirs, NULL))
            continue;
        if (sel->kind == GS_FIELD) {
            const char *key = sel->alias ? sel->alias : sel->name;
            size_t k = 0;
            while (k < keys.n && strcmp(((const char **)keys.v)[k], key) != 0)
                k++;
            if (k == keys.n)
                *(const char **)vpush(c->a, &keys, sizeof(char *)) = key;
            if (k > 0)
                *(gql_loc_t *)vpush(c->a, &extra, sizeof(gql_loc_t)) = sel->loc;
            if (sel->name[0] == '_' && sel->name[1] == '_') {
                if (d->name)
                    verr(c, &sel->loc, 1,
                         "Subscription \"%s\" must not select an introspection top level field.", d->name);
                else
                    verr(c, &sel->loc, 1,
                         "Anonymous Subscription must not select an introspection top level field.");
            }
        } else if (sel->kind == GS_INLINE) {
            *(cframe_t *)vpush(c->a, &stack, sizeof(cframe_t)) = (cframe_t){&sel->sel, 0, root};
        } else {
            int fi = fragment_index(c, sel->name);
            if (fi >= 0 && !seen[fi] && !c->info[fi].cyclic) {
                seen[fi] = true;
                *(cframe_t *)vpush(c->a, &stack, sizeof(cframe_t)) =
                    (cframe_t){&c->doc->defs[fi].sel, 0, root};
            }
        }
    }
    if (keys.n > 1) {
        if (d->name)
            verr(c, extra.v, extra.n, "Subscription \"%s\" must select only one top level field.", d->name);
        else
            verr(c, extra.v, extra.n, "Anonymous Subscription must select only one top level field.");
    }
}

/* ---- field merging (5.3.2) ---- */

static bool spend(vctx_t *c, size_t n)
{
    if (c->aborted)
        return false;
    if (c->budget >= n) {
        c->budget -= n;
        return true;
    }
    c->aborted = true;
    verr(c, &c->root_loc, 1,
         "Validation aborted: the document's fields are too many to check for conflicts.");
    return false;
}

static const char *key_of(const gql_selection_t *s)
{
    return s->alias ? s->alias : s->name;
}

/*
 * Appends the fields selection set ss asks of parent to out: its own and its inline fragments'
 * first, then each fragment it spreads (in order, each the same way), as graphql-js orders them.
 * Each fragment is expanded once per collection (the stamp is c->gen). No recursion: a unit
 * stack holds the fragments to expand, a frame stack the inline fragments open.
 */
static void collect(vctx_t *c, vec_t *out, const gql_selset_t *ss, const gql_type_t *parent,
                    const fent_t *origin)
{
    vec_t *units = &c->ustack, *frames = &c->cstack, *spreads = &c->sbuf;
    units->n = 0;
    *(cframe_t *)vpush(c->a, units, sizeof(cframe_t)) = (cframe_t){ss, 0, parent};
    while (units->n) {
        cframe_t unit = ((cframe_t *)units->v)[--units->n];
        frames->n = 0;
        spreads->n = 0;
        *(cframe_t *)vpush(c->a, frames, sizeof(cframe_t)) = unit;
        while (frames->n) {
            cframe_t *f = &((cframe_t *)frames->v)[frames->n - 1];
            if (f->i == f->ss->n) {
                frames->n--;
                continue;
            }
            const gql_selection_t *sel = &f->ss->items[f->i++];
            const gql_type_t *p = f->parent;
            if (sel->kind == GS_FIELD) {
                if (!spend(c, 1))
                    return;
                fent_t *e = vpush(c->a, out, sizeof(fent_t));
                *e = (fent_t){sel, p, gql_field_lookup(c->s, p, sel->name), origin};
            } else if (sel->kind == GS_INLINE) {
                const gql_type_t *t =
                    sel->type_cond ? composite_or_null(gql_schema_type(c->s, sel->type_cond)) : p;
                *(cframe_t *)vpush(c->a, frames, sizeof(cframe_t)) = (cframe_t){&sel->sel, 0, t};
            } else {
                int fi = fragment_index(c, sel->name);
                if (fi < 0 || c->info[fi].cyclic || c->stamp[fi] == c->gen)
                    continue;
                c->stamp[fi] = c->gen;
                *(int *)vpush(c->a, spreads, sizeof(int)) = fi;
            }
        }
        for (size_t i = spreads->n; i-- > 0;) {
            int fi = ((int *)spreads->v)[i];
            *(cframe_t *)vpush(c->a, units, sizeof(cframe_t)) =
                (cframe_t){&c->doc->defs[fi].sel, 0, c->info[fi].type};
        }
    }
}

/* The fields under the members of a group: their merged selection sets. */
static vec_t collect_sub(vctx_t *c, const fent_t *const *members, size_t n)
{
    vec_t out = {0};
    c->gen++;
    for (size_t i = 0; i < n && !c->aborted; i++) {
        const fent_t *m = members[i];
        if (!m->node->sel.n)
            continue;
        const gql_type_t *nt = m->def ? gql_named_type(m->def->type) : NULL;
        if (m->def && !gql_is_composite(nt))
            continue;
        collect(c, &out, &m->node->sel, nt, m);
    }
    return out;
}

/* True when set e[0..n) was checked before in this pass (else remembers it). */
static bool seen_set(vctx_t *c, memo_t *m, const fent_t *e, size_t n)
{
    const void **p = arena_alloc(c->a, n * sizeof(*p));
    for (size_t i = 0; i < n; i++)
        p[i] = e[i].node;
    return !memo_add(c->a, m, p, n);
}

typedef struct kidx {
    const char *key;
    size_t i;
} kidx_t;

static int kidx_cmp(const void *x, const void *y)
{
    const kidx_t *a = x, *b = y;
    int r = strcmp(a->key, b->key);
    return r ? r : (a->i > b->i) - (a->i < b->i);
}

/* The set's entries ordered by response key (document order within a key). */
static const fent_t **by_key(vctx_t *c, const fent_t *e, size_t n)
{
    kidx_t *k = arena_alloc(c->a, n * sizeof(*k));
    for (size_t i = 0; i < n; i++)
        k[i] = (kidx_t){key_of(e[i].node), i};
    qsort(k, n, sizeof(*k), kidx_cmp);
    const fent_t **out = arena_alloc(c->a, n * sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = &e[k[i].i];
    return out;
}

/* Reports that a and b (same response key, same depth) conflict for reason: graphql-js's
 * "Fields "x" conflict because subfields "y" conflict because ...", from the selection set
 * that holds both. Each pair is reported once. */
static void conflict(vctx_t *c, const fent_t *a, const fent_t *b, const char *reason)
{
    const void **pair = arena_alloc(c->a, 2 * sizeof(*pair));
    pair[0] = a->node;
    pair[1] = b->node;
    if (!memo_add(c->a, &c->reported, pair, 2))
        return;
    const fent_t *ca[MAX_MERGE_DEPTH + 2], *cb[MAX_MERGE_DEPTH + 2];
    size_t na = 0, nb = 0;
    for (const fent_t *x = a; x && na < ARRAY_LEN(ca); x = x->origin)
        ca[na++] = x;
    for (const fent_t *x = b; x && nb < ARRAY_LEN(cb); x = x->origin)
        cb[nb++] = x;
    while (na > 1 && nb > 1 && ca[na - 1]->node == cb[nb - 1]->node) {
        na--;
        nb--;
    }
    size_t k = MIN(na, nb);
    buf_t m = BUF_INIT;
    buf_printf(&m, "Fields \"%s\" conflict because ", key_of(ca[k - 1]->node));
    for (size_t i = k - 1; i-- > 0;)
        buf_printf(&m, "subfields \"%s\" conflict because ", key_of(ca[i]->node));
    buf_printf(&m, "%s. Use different aliases on the fields to fetch both if this was intentional.", reason);
    gql_loc_t locs[4];
    size_t nl = 0;
    locs[nl++] = ca[k - 1]->node->loc;
    if (k > 1)
        locs[nl++] = ca[0]->node->loc;
    locs[nl++] = cb[k - 1]->node->loc;
    if (k > 1)
        locs[nl++] = cb[0]->node->loc;
    verr(c, locs, nl, "%s", buf_cstr(&m));
    buf_free(&m);
}

/* The spec's SameResponseShape at one level: wrappers alike, leaves the same type. */
static bool same_shape(const gql_type_t *a, const gql_type_t *b)
{
    for (;;) {
        if (a->kind == GK_NON_NULL || b->kind == GK_NON_NULL) {
            if (a->kind != b->kind)
                return false;
            a = a->of;
            b = b->of;
        }
        if (a->kind != GK_LIST && b->kind != GK_LIST)
            break;
        if (a->kind != b->kind)
            return false;
        a = a->of;
        b = b->of;
    }
    if (gql_is_leaf(a) || gql_is_leaf(b))
        return same_type(a, b);
    return true;
}

/* Every field of a response key has the same response shape, down through their subfields. */
static void shape_check(vctx_t *c, const fent_t *e, size_t n, int depth)
{
    if (!n || c->stop || c->aborted || seen_set(c, &c->memo_shape, e, n))
        return;
    if (depth > MAX_MERGE_DEPTH) {
        c->aborted = true;
        verr(c, &c->root_loc, 1, "Validation aborted: fragments nest selections more than %d levels deep.",
             MAX_MERGE_DEPTH);
        return;
    }
    const fent_t **s = by_key(c, e, n);
    for (size_t g0 = 0, g1; g0 < n && !c->aborted; g0 = g1) {
        const char *key = key_of(s[g0]->node);
        g1 = g0 + 1;
        while (g1 < n && strcmp(key_of(s[g1]->node), key) == 0)
            g1++;
        const fent_t *ref = NULL;
        bool ok = true;
        for (size_t i = g0; i < g1; i++) {
            if (!s[i]->def || !spend(c, 1))
                continue;
            if (!ref) {
                ref = s[i];
            } else if (!same_shape(ref->def->type, s[i]->def->type)) {
                conflict(c, ref, s[i],
                         fmt(c, "they return conflicting types \"%s\" and \"%s\"", tstr(c, ref->def->type),
                             tstr(c, s[i]->def->type)));
                ok = false;
            }
        }
        if (!ok)
            continue;
        vec_t sub = collect_sub(c, s + g0, g1 - g0);
        shape_check(c, sub.v, sub.n, depth + 1);
    }
}

static bool same_value(const gql_value_t *a, const gql_value_t *b);

static bool same_fields(const gql_value_t *a, const gql_value_t *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        size_t j = 0;
        while (j < b->n && strcmp(a->fields[i].name, b->fields[j].name) != 0)
            j++;
        if (j == b->n || !same_value(a->fields[i].value, b->fields[j].value))
            return false;
    }
    return true;
}

static bool same_value(const gql_value_t *a, const gql_value_t *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case GV_BOOL:
        return a->b == b->b;
    case GV_NULL:
        return true;
    case GV_STRING:
        return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
    case GV_LIST:
        if (a->n != b->n)
            return false;
        for (size_t i = 0; i < a->n; i++)
            if (!same_value(a->items[i], b->items[i]))
                return false;
        return true;
    case GV_OBJECT:
        return same_fields(a, b);
    default:
        return strcmp(a->s, b->s) == 0;
    }
}

static bool same_args(const gql_selection_t *a, const gql_selection_t *b)
{
    if (a->nargs != b->nargs)
        return false;
    for (size_t i = 0; i < a->nargs; i++) {
        size_t j = 0;
        while (j < b->nargs && strcmp(a->args[i].name, b->args[j].name) != 0)
            j++;
        if (j == b->nargs || !same_value(a->args[i].value, b->args[j].value))
            return false;
    }
    return true;
}

/* Fields of a key whose parents may be the same object ask for the same field with the same
 * arguments, and so do their subfields. */
static void parents_check(vctx_t *c, const fent_t *e, size_t n, int depth)
{
    if (!n || c->stop || c->aborted || seen_set(c, &c->memo_parents, e, n))
        return;
    if (depth > MAX_MERGE_DEPTH) {
        c->aborted = true;
        verr(c, &c->root_loc, 1, "Validation aborted: fragments nest selections more than %d levels deep.",
             MAX_MERGE_DEPTH);
        return;
    }
    const fent_t **s = by_key(c, e, n);
    const fent_t **group = arena_alloc(c->a, n * sizeof(*group));
    for (size_t g0 = 0, g1; g0 < n && !c->aborted; g0 = g1) {
        const char *key = key_of(s[g0]->node);
        g1 = g0 + 1;
        while (g1 < n && strcmp(key_of(s[g1]->node), key) == 0)
            g1++;
        /* one group per object parent, with the fields on abstract (or unknown) parents in each;
         * just those when no parent is an object */
        bool any_object = false;
        for (size_t i = g0; i < g1; i++)
            any_object |= s[i]->parent && s[i]->parent->kind == GK_OBJECT;
        for (size_t p = g0; p < g1 && !c->aborted; p++) {
            const gql_type_t *obj = s[p]->parent;
            bool is_obj = obj && obj->kind == GK_OBJECT;
            if (any_object) {
                if (!is_obj)
                    continue;
                size_t q = g0;
                while (q < p && s[q]->parent != obj)
                    q++;
                if (q < p)
                    continue; /* this parent's group was checked */
            } else if (p > g0) {
                break;
            }
            size_t gn = 0;
            for (size_t i = g0; i < g1; i++) {
                const gql_type_t *pt = s[i]->parent;
                if (!any_object || !pt || pt->kind != GK_OBJECT || pt == obj)
                    group[gn++] = s[i];
            }
            bool ok = true;
            for (size_t i = 1; i < gn; i++) {
                if (!spend(c, 1))
                    break;
                const gql_selection_t *x = group[0]->node, *y = group[i]->node;
                if (strcmp(x->name, y->name) != 0) {
                    conflict(c, group[0], group[i],
                             fmt(c, "\"%s\" and \"%s\" are different fields", x->name, y->name));
                    ok = false;
                } else if (!same_args(x, y)) {
                    conflict(c, group[0], group[i], "they have differing arguments");
                    ok = false;
                }
            }
            if (!ok)
                continue;
            vec_t sub = collect_sub(c, group, gn);
            parents_check(c, sub.v, sub.n, depth + 1);
        }
    }
}

static void merge_check(vctx_t *c)
{
    c->budget = MERGE_BUDGET;
    c->stamp = arena_alloc(c->a, c->doc->ndefs * sizeof(uint32_t));
    memset(c->stamp, 0, c->doc->ndefs * sizeof(uint32_t));
    for (size_t i = 0; i < c->doc->ndefs && !c->stop && !c->aborted; i++) {
        const gql_def_t *d = &c->doc->defs[i];
        if (d->kind == GD_FRAGMENT && c->info[i].cyclic)
            continue;
        c->root_loc = d->loc;
        vec_t set = {0};
        c->gen++;
        if (d->kind == GD_FRAGMENT)
            c->stamp[i] = c->gen;
        collect(c, &set, &d->sel, c->info[i].type, NULL);
        parents_check(c, set.v, set.n, 0);
        shape_check(c, set.v, set.n, 0);
    }
}

/* ---- entry points ---- */

bool gql_validate(const gql_schema_t *s, const gql_doc_t *doc, gql_errors_t *errs)
{
    size_t before = errs->n;
    bool truncated = errs->truncated;
    if (!doc || !doc->ndefs)
        return true;
    vctx_t c = {.s = s, .doc = doc, .errs = errs, .a = errs->arena};
    c.info = arena_alloc(c.a, doc->ndefs * sizeof(def_info_t));
    memset(c.info, 0, doc->ndefs * sizeof(def_info_t));
    index_definitions(&c);
    for (size_t i = 0; i < doc->ndefs && !c.stop; i++)
        walk_definition(&c, (int)i);
    fragment_cycles(&c);
    uint32_t *mark = arena_alloc(c.a, doc->ndefs * sizeof(uint32_t));
    memset(mark, 0, doc->ndefs * sizeof(uint32_t));
    for (size_t i = 0; i < doc->ndefs && !c.stop; i++)
        if (doc->defs[i].kind != GD_FRAGMENT)
            operation_scope(&c, (int)i, mark);
    unused_fragments(&c);
    for (size_t i = 0; i < doc->ndefs && !c.stop; i++)
        if (doc->defs[i].kind == GD_SUBSCRIPTION && c.info[i].type)
            subscription_root(&c, (int)i);
    if (!c.stop)
        merge_check(&c);
    return errs->n == before && errs->truncated == truncated;
}

const gql_def_t *gql_select_operation(const gql_doc_t *doc, const char *operation_name, gql_errors_t *errs)
{
    const gql_def_t *found = NULL;
    size_t nops = 0;
    for (size_t i = 0; doc && i < doc->ndefs; i++) {
        const gql_def_t *d = &doc->defs[i];
        if (d->kind == GD_FRAGMENT)
            continue;
        nops++;
        if (operation_name ? d->name && strcmp(d->name, operation_name) == 0 : !found)
            found = d;
    }
    gql_loc_t at = doc && doc->ndefs ? doc->defs[0].loc : (gql_loc_t){0, 0};
    if (operation_name && !found) {
        gql_err_t *e = gql_errors_add(errs, &at, 1, "Unknown operation named \"%s\".", operation_name);
        if (e)
            e->code = "OPERATION_RESOLUTION_FAILURE";
        return NULL;
    }
    if (!found || (!operation_name && nops > 1)) {
        gql_err_t *e =
            gql_errors_add(errs, &at, 1,
                           nops ? "Must provide operation name if query contains multiple operations."
                                : "Must provide an operation.");
        if (e)
            e->code = "OPERATION_RESOLUTION_FAILURE";
        return NULL;
    }
    return found;
}

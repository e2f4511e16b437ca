#include "api/graphql/ast.h"
#include "test.h"

#include <stdint.h>

/*
 * The GraphQL parser (api/graphql/parse.c, api/graphql/lex.c). Documents are checked through a
 * one-line rendering of their tree (dump below: kinds, names, aliases, arguments, decoded
 * values and every node's line:column). The expected renderings of the valid documents and the
 * kitchen sink, and the errors of the invalid documents, were produced with graphql-js 16
 * (tools/node_modules/graphql) and agree with it, except where we are deliberately stricter:
 * type system definitions and descriptions (not executable), control characters and
 * ill-formed UTF-8 (refused everywhere), and columns, which count code points as the spec
 * does, not UTF-16 units.
 */

/* ---- a rendering of the tree ---- */

static void dump_loc(buf_t *b, gql_loc_t l)
{
    buf_printf(b, "@%u:%u", (unsigned)l.line, (unsigned)l.col);
}

static void dump_str(buf_t *b, const char *s, size_t n)
{
    buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\')
            buf_printf(b, "\\x%02x", c);
        else
            buf_putc(b, (char)c);
    }
    buf_putc(b, '"');
}

static void dump_value(buf_t *b, const gql_value_t *v)
{
    switch (v->kind) {
    case GV_VARIABLE:
        buf_printf(b, "$%s", v->s);
        break;
    case GV_INT:
        buf_printf(b, "I%s", v->s);
        break;
    case GV_FLOAT:
        buf_printf(b, "F%s", v->s);
        break;
    case GV_STRING:
        dump_str(b, v->s, v->n);
        break;
    case GV_BOOL:
        buf_printf(b, "%s", v->b ? "true" : "false");
        break;
    case GV_NULL:
        buf_printf(b, "null");
        break;
    case GV_ENUM:
        buf_printf(b, "E%s", v->s);
        break;
    case GV_LIST:
        buf_putc(b, '[');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                buf_putc(b, ',');
            dump_value(b, v->items[i]);
        }
        buf_putc(b, ']');
        break;
    case GV_OBJECT:
        buf_putc(b, '{');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                buf_putc(b, ',');
            buf_printf(b, "%s", v->fields[i].name);
            dump_loc(b, v->fields[i].loc);
            buf_putc(b, ':');
            dump_value(b, v->fields[i].value);
        }
        buf_putc(b, '}');
        break;
    }
    dump_loc(b, v->loc);
}

static void dump_args(buf_t *b, const gql_arg_t *a, size_t n)
{
    if (!n)
        return;
    buf_putc(b, '(');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(b, ',');
        buf_printf(b, "%s", a[i].name);
        dump_loc(b, a[i].loc);
        buf_putc(b, ':');
        dump_value(b, a[i].value);
    }
    buf_putc(b, ')');
}

static void dump_dirs(buf_t *b, const gql_directive_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf_printf(b, " @%s", d[i].name);
        dump_loc(b, d[i].loc);
        dump_args(b, d[i].args, d[i].nargs);
    }
}

static void dump_type(buf_t *b, const gql_typeref_t *t)
{
    if (t->kind == GTR_NAMED) {
        buf_printf(b, "%s", t->name);
    } else if (t->kind == GTR_LIST) {
        buf_putc(b, '[');
        dump_type(b, t->of);
        buf_putc(b, ']');
    } else {
        dump_type(b, t->of);
        buf_putc(b, '!');
    }
    dump_loc(b, t->loc);
}

static void dump_selset(buf_t *b, const gql_selset_t *s);

static void dump_selection(buf_t *b, const gql_selection_t *s)
{
    switch (s->kind) {
    case GS_FIELD:
        if (s->alias)
            buf_printf(b, "%s:", s->alias);
        buf_printf(b, "%s", s->name);
        dump_loc(b, s->loc);
        dump_args(b, s->args, s->nargs);
        dump_dirs(b, s->dirs, s->ndirs);
        if (s->sel.n)
            dump_selset(b, &s->sel);
        break;
    case GS_SPREAD:
        buf_printf(b, "...%s", s->name);
        dump_loc(b, s->loc);
        dump_dirs(b, s->dirs, s->ndirs);
        break;
    case GS_INLINE:
        buf_printf(b, "...on %s", s->type_cond ? s->type_cond : "-");
        dump_loc(b, s->loc);
        dump_dirs(b, s->dirs, s->ndirs);
        dump_selset(b, &s->sel);
        break;
    }
}

static void dump_selset(buf_t *b, const gql_selset_t *s)
{
    buf_putc(b, '{');
    dump_loc(b, s->loc);
    for (size_t i = 0; i < s->n; i++) {
        buf_putc(b, ' ');
        dump_selection(b, &s->items[i]);
    }
    buf_putc(b, '}');
}

static const char *dump_doc(buf_t *b, const gql_doc_t *d)
{
    static const char *const kinds[] = {"query", "mutation", "subscription", "fragment"};
    buf_reset(b);
    for (size_t k = 0; k < d->ndefs; k++) {
        const gql_def_t *f = &d->defs[k];
        buf_printf(b, "%s %s", kinds[f->kind], f->name ? f->name : "-");
        if (f->type_cond)
            buf_printf(b, " on %s", f->type_cond);
        dump_loc(b, f->loc);
        if (f->nvars) {
            buf_putc(b, '(');
            for (size_t i = 0; i < f->nvars; i++) {
                const gql_vardef_t *v = &f->vars[i];
                if (i)
                    buf_putc(b, ',');
                buf_printf(b, "$%s", v->name);
                dump_loc(b, v->loc);
                buf_putc(b, ':');
                dump_type(b, v->type);
                if (v->def) {
                    buf_putc(b, '=');
                    dump_value(b, v->def);
                }
                dump_dirs(b, v->dirs, v->ndirs);
            }
            buf_putc(b, ')');
        }
        dump_dirs(b, f->dirs, f->ndirs);
        dump_selset(b, &f->sel);
        buf_putc(b, ';');
    }
    return buf_cstr(b);
}

/* ---- helpers ---- */

static gql_doc_t *parse_lim(arena_t *a, const char *s, size_t n, uint32_t max_tokens, uint32_t max_nesting,
                            gql_error_t *err)
{
    gql_parse_limits_t lim = {.max_tokens = max_tokens, .max_nesting = max_nesting};
    memset(err, 0, sizeof *err);
    return gql_parse(a, s, n, &lim, err);
}

/* A refusal looks like one: the prefix, a position, a message that ends. */
static int error_well_formed(const gql_error_t *err)
{
    return strncmp(err->message, "Syntax Error: ", 14) == 0 && err->loc.line >= 1 && err->loc.col >= 1 &&
           memchr(err->message, '\0', sizeof err->message) != NULL;
}

/* Checks that s fails at line:col with "Syntax Error: " msg; prints the case when it does not. */
static void expect_error(const char *what, const char *s, size_t n, uint32_t line, uint32_t col,
                         const char *msg)
{
    arena_t a;
    gql_error_t err;
    arena_init(&a, NULL, 0);
    gql_doc_t *d = parse_lim(&a, s, n, 0, 0, &err);
    char want[200];
    snprintf(want, sizeof want, "Syntax Error: %s", msg);
    if (d || err.loc.line != line || err.loc.col != col || (msg && strcmp(err.message, want) != 0)) {
        printf("  %s: %.*s\n    got %s %u:%u %s\n    want %u:%u %s\n", what, (int)MIN(n, 80), s,
               d ? "success" : "error", (unsigned)err.loc.line, (unsigned)err.loc.col, d ? "" : err.message,
               (unsigned)line, (unsigned)col, msg ? want : "(any)");
        test_failed_now = 1;
    }
    arena_destroy(&a);
}

/* ---- valid documents ---- */

/* graphql-js's kitchen-sink query (src/__testUtils__/kitchenSinkQuery.ts, v16): every
 * executable construct, with the rendering graphql-js's parse gives. */
static const char kitchen_sink[] = "query queryName($foo: ComplexType, $site: Site = MOBILE) @onQuery {\n"
                                   "  whoever123is: node(id: [123, 456]) {\n"
                                   "    id\n"
                                   "    ... on User @onInlineFragment {\n"
                                   "      field2 {\n"
                                   "        id\n"
                                   "        alias: field1(first: 10, after: $foo) @include(if: $foo) {\n"
                                   "          id\n"
                                   "          ...frag @onFragmentSpread\n"
                                   "        }\n"
                                   "      }\n"
                                   "    }\n"
                                   "    ... @skip(unless: $foo) {\n"
                                   "      id\n"
                                   "    }\n"
                                   "    ... {\n"
                                   "      id\n"
                                   "    }\n"
                                   "  }\n"
                                   "}\n"
                                   "\n"
                                   "mutation likeStory @onMutation {\n"
                                   "  like(story: 123) @onField {\n"
                                   "    story {\n"
                                   "      id @onField\n"
                                   "    }\n"
                                   "  }\n"
                                   "}\n"
                                   "\n"
                                   "subscription StoryLikeSubscription(\n"
                                   "  $input: StoryLikeSubscribeInput @onVariableDefinition\n"
                                   ")\n"
                                   "  @onSubscription {\n"
                                   "  storyLikeSubscribe(input: $input) {\n"
                                   "    story {\n"
                                   "      likers {\n"
                                   "        count\n"
                                   "      }\n"
                                   "      likeSentence {\n"
                                   "        text\n"
                                   "      }\n"
                                   "    }\n"
                                   "  }\n"
                                   "}\n"
                                   "\n"
                                   "fragment frag on Friend @onFragmentDefinition {\n"
                                   "  foo(\n"
                                   "    size: $size\n"
                                   "    bar: $b\n"
                                   "    obj: {\n"
                                   "      key: \"value\"\n"
                                   "      block: \"\"\"\n"
                                   "      block string uses \\\"\"\"\n"
                                   "      \"\"\"\n"
                                   "    }\n"
                                   "  )\n"
                                   "}\n"
                                   "\n"
                                   "{\n"
                                   "  unnamed(truthy: true, falsy: false, nullish: null)\n"
                                   "  query\n"
                                   "}\n"
                                   "\n"
                                   "query {\n"
                                   "  __typename\n"
                                   "}\n";

static const char kitchen_sink_tree[] =
    "query queryName@1:1($foo@1:17:ComplexType@1:23,$site@1:36:Site@1:43=EMOBILE@1:50) @onQuery@1:58{@1:67 "
    "whoever123is:node@2:3(id@2:22:[I123@2:27,I456@2:32]@2:26){@2:38 id@3:5 ...on User@4:5 "
    "@onInlineFragment@4:17{@4:35 field2@5:7{@5:14 id@6:9 "
    "alias:field1@7:9(first@7:23:I10@7:30,after@7:34:$foo@7:41) @include@7:47(if@7:56:$foo@7:60){@7:66 "
    "id@8:11 ...frag@9:11 @onFragmentSpread@9:19}}} ...on -@13:5 @skip@13:9(unless@13:15:$foo@13:23){@13:29 "
    "id@14:7} ...on -@16:5{@16:9 id@17:7}}};mutation likeStory@22:1 @onMutation@22:20{@22:32 "
    "like@23:3(story@23:8:I123@23:15) @onField@23:20{@23:29 story@24:5{@24:11 id@25:7 "
    "@onField@25:10}}};subscription StoryLikeSubscription@30:1($input@31:3:StoryLikeSubscribeInput@31:11 "
    "@onVariableDefinition@31:35) @onSubscription@33:3{@33:19 "
    "storyLikeSubscribe@34:3(input@34:22:$input@34:29){@34:37 story@35:5{@35:11 likers@36:7{@36:14 "
    "count@37:9} likeSentence@39:7{@39:20 text@40:9}}}};fragment frag on Friend@46:1 "
    "@onFragmentDefinition@46:25{@46:47 "
    "foo@47:3(size@48:5:$size@48:11,bar@49:5:$b@49:10,obj@50:5:{key@51:7:\"value\"@51:12,block@52:7:\"block "
    "string uses \\x22\\x22\\x22\"@52:14}@50:10)};query -@59:1{@59:1 "
    "unnamed@60:3(truthy@60:11:true@60:19,falsy@60:25:false@60:32,nullish@60:39:null@60:48) "
    "query@61:3};query -@64:1{@64:7 __typename@65:3};";

TEST(kitchen_sink)
{
    arena_t a;
    gql_error_t err;
    buf_t b = BUF_INIT;
    arena_init(&a, NULL, 0);
    gql_doc_t *d = parse_lim(&a, kitchen_sink, sizeof kitchen_sink - 1, 0, 0, &err);
    CHECK(d != NULL);
    if (d) {
        CHECK_EQ_INT(d->ndefs, 6);
        CHECK_EQ_INT(d->defs[3].kind, GD_FRAGMENT);
        const gql_value_t *obj = d->defs[3].sel.items[0].args[2].value;
        CHECK_EQ_INT(obj->kind, GV_OBJECT);
        CHECK_STRN(obj->fields[1].value->s, obj->fields[1].value->n, "block string uses \"\"\"");
        CHECK(d->defs[4].name == NULL && d->defs[4].kind == GD_QUERY);
        const char *got = dump_doc(&b, d);
        if (strcmp(got, kitchen_sink_tree) != 0) {
            printf("  got  %s\n  want %s\n", got, kitchen_sink_tree);
            test_failed_now = 1;
        }
        CHECK_EQ_INT(d->ntokens, 190); /* as graphql-js's Lexer counts them */
    } else {
        printf("  %u:%u %s\n", (unsigned)err.loc.line, (unsigned)err.loc.col, err.message);
    }
    buf_free(&b);
    arena_destroy(&a);
}

static const struct {
    const char *text, *tree;
} valid[] = {
    {"{ a }", "query -@1:1{@1:1 a@1:3};"},
    {"{ a b c }", "query -@1:1{@1:1 a@1:3 b@1:5 c@1:7};"},
    {"query { a }", "query -@1:1{@1:7 a@1:9};"},
    {"query Q { a }", "query Q@1:1{@1:9 a@1:11};"},
    {"mutation M { a }", "mutation M@1:1{@1:12 a@1:14};"},
    {"subscription S { a }", "subscription S@1:1{@1:16 a@1:18};"},
    {"{ x: a }", "query -@1:1{@1:1 x:a@1:3};"},
    {"{ a(x: 1) }", "query -@1:1{@1:1 a@1:3(x@1:5:I1@1:8)};"},
    {"{ a(x: -1, y: 0, z: -0) }", "query -@1:1{@1:1 a@1:3(x@1:5:I-1@1:8,y@1:12:I0@1:15,z@1:18:I-0@1:21)};"},
    {"{ a(x: 1.5, y: -0.0e-0, z: 1E5, w: 2e+10) }",
     "query -@1:1{@1:1 a@1:3(x@1:5:F1.5@1:8,y@1:13:F-0.0e-0@1:16,z@1:25:F1E5@1:28,w@1:33:F2e+10@1:36)};"},
    {"{ a(x: \"s\", y: \"\") }", "query -@1:1{@1:1 a@1:3(x@1:5:\"s\"@1:8,y@1:13:\"\"@1:16)};"},
    {"{ a(x: \"\\\"\\\\\\/\\b\\f\\n\\r\\t\") }",
     "query -@1:1{@1:1 a@1:3(x@1:5:\"\\x22\\x5c/\\x08\\x0c\\x0a\\x0d\\x09\"@1:8)};"},
    {"{ a(x: \"\\u0041\\u00e9\\u20AC\\uD83D\\uDE00\") }", "query -@1:1{@1:1 a@1:3(x@1:5:\"Aé€😀\"@1:8)};"},
    {"{ a(x: \"\\u{41}\\u{1F600}\\u{10FFFF}\\u{0}\\u{00000041}\") }",
     "query -@1:1{@1:1 a@1:3(x@1:5:\"A😀􏿿\\x00A\"@1:8)};"},
    {"{ a(x: \"é€😀\") }", "query -@1:1{@1:1 a@1:3(x@1:5:\"é€😀\"@1:8)};"},
    {"{ a(x: \"\"\"  hello\n    world\n  \"\"\") }",
     "query -@1:1{@1:1 a@1:3(x@1:5:\"  hello\\x0aworld\"@1:8)};"},
    {"{ a(x: true, y: false, z: null) }",
     "query -@1:1{@1:1 a@1:3(x@1:5:true@1:8,y@1:14:false@1:17,z@1:24:null@1:27)};"},
    {"{ a(x: RED, y: on, z: query, w: True, v: NULL) }",
     "query -@1:1{@1:1 "
     "a@1:3(x@1:5:ERED@1:8,y@1:13:Eon@1:16,z@1:20:Equery@1:23,w@1:30:ETrue@1:33,v@1:39:ENULL@1:42)};"},
    {"{ a(x: [], y: [1, [2, 3]], z: [true \"s\" RED]) }",
     "query -@1:1{@1:1 "
     "a@1:3(x@1:5:[]@1:8,y@1:12:[I1@1:16,[I2@1:20,I3@1:23]@1:19]@1:15,z@1:28:[true@1:32,\"s\"@1:37,ERED@1:41]"
     "@1:31)};"},
    {"{ a(x: {}, y: {a: 1, b: {c: [null]}}) }",
     "query -@1:1{@1:1 "
     "a@1:3(x@1:5:{}@1:8,y@1:12:{a@1:16:I1@1:19,b@1:22:{c@1:26:[null@1:30]@1:29}@1:25}@1:15)};"},
    {"{ a(x: $v, y: [$w], z: {k: $u}) }",
     "query -@1:1{@1:1 a@1:3(x@1:5:$v@1:8,y@1:12:[$w@1:16]@1:15,z@1:21:{k@1:25:$u@1:28}@1:24)};"},
    {"{ a @d }", "query -@1:1{@1:1 a@1:3 @d@1:5};"},
    {"{ a @d(x: 1) @e }", "query -@1:1{@1:1 a@1:3 @d@1:5(x@1:8:I1@1:11) @e@1:14};"},
    {"{ a { b { c } } }", "query -@1:1{@1:1 a@1:3{@1:5 b@1:7{@1:9 c@1:11}}};"},
    {"{ ...F }", "query -@1:1{@1:1 ...F@1:3};"},
    {"{ ...F @d(x: $v) }", "query -@1:1{@1:1 ...F@1:3 @d@1:8(x@1:11:$v@1:14)};"},
    {"{ ... on T { a } }", "query -@1:1{@1:1 ...on T@1:3{@1:12 a@1:14}};"},
    {"{ ... { a } }", "query -@1:1{@1:1 ...on -@1:3{@1:7 a@1:9}};"},
    {"{ ... @d { a } }", "query -@1:1{@1:1 ...on -@1:3 @d@1:7{@1:10 a@1:12}};"},
    {"{ ... on T @d(x: $v) { a } }", "query -@1:1{@1:1 ...on T@1:3 @d@1:12(x@1:15:$v@1:18){@1:22 a@1:24}};"},
    {"fragment F on T { a }", "fragment F on T@1:1{@1:17 a@1:19};"},
    {"fragment F on T @d { ...G }", "fragment F on T@1:1 @d@1:17{@1:20 ...G@1:22};"},
    {"query Q($a: Int) { a }", "query Q@1:1($a@1:9:Int@1:13){@1:18 a@1:20};"},
    {"query Q($a: Int!, $b: [Int], $c: [Int!]!, $d: [[String]!]) { a }",
     "query "
     "Q@1:1($a@1:9:Int@1:13!@1:13,$b@1:19:[Int@1:24]@1:23,$c@1:30:[Int@1:35!@1:35]@1:34!@1:34,$d@1:43:[["
     "String@1:49]@1:48!@1:48]@1:47){@1:60 a@1:62};"},
    {"query Q($a: Int = 1, $b: [E] = [A, B], $c: In = {x: \"y\", z: [null]}) { a }",
     "query "
     "Q@1:1($a@1:9:Int@1:13=I1@1:19,$b@1:22:[E@1:27]@1:26=[EA@1:33,EB@1:36]@1:32,$c@1:40:In@1:44={x@1:50:"
     "\"y\"@1:53,z@1:58:[null@1:62]@1:61}@1:49){@1:70 a@1:72};"},
    {"query Q($a: Int @d, $b: Int = 1 @e(x: 2)) @f { a }",
     "query Q@1:1($a@1:9:Int@1:13 @d@1:17,$b@1:21:Int@1:25=I1@1:31 @e@1:33(x@1:36:I2@1:39)) @f@1:43{@1:46 "
     "a@1:48};"},
    {"query Q @d @e(x: $v) { a }", "query Q@1:1 @d@1:9 @e@1:12(x@1:15:$v@1:18){@1:22 a@1:24};"},
    {"query query { query }", "query query@1:1{@1:13 query@1:15};"},
    {"fragment query on fragment { on fragment }",
     "fragment query on fragment@1:1{@1:28 on@1:30 fragment@1:33};"},
    {"{ a }\n{ b }", "query -@1:1{@1:1 a@1:3};query -@2:1{@2:1 b@2:3};"},
    {"\357\273\277# comment\r\n{ a, , b }\r\n", "query -@2:1{@2:1 a@2:3 b@2:8};"},
    {"{ a }\r{ b }", "query -@1:1{@1:1 a@1:3};query -@2:1{@2:1 b@2:3};"},
    {"{ a(x: 9007199254740993123) }", "query -@1:1{@1:1 a@1:3(x@1:5:I9007199254740993123@1:8)};"},
    {"{ __typename, __schema { types { name } } }",
     "query -@1:1{@1:1 __typename@1:3 __schema@1:15{@1:24 types@1:26{@1:32 name@1:34}}};"},
    {"{ a(x: \"\"\"\"\"\") }", "query -@1:1{@1:1 a@1:3(x@1:5:\"\"@1:8)};"},
    {"query ($a: Int) { a(x: $a) }", "query -@1:1($a@1:8:Int@1:12){@1:17 a@1:19(x@1:21:$a@1:24)};"},
    {"{\n\t\ta(\n\t\t\tx: 1\n\t\t)\n}", "query -@1:1{@1:1 a@2:3(x@3:4:I1@3:7)};"},
    {"{ a(x: \"\\u00e9\") b }", "query -@1:1{@1:1 a@1:3(x@1:5:\"é\"@1:8) b@1:18};"},
    {"{ a(x: \"\"\"a\\\"\"\"b\"\"\") }", "query -@1:1{@1:1 a@1:3(x@1:5:\"a\\x22\\x22\\x22b\"@1:8)};"},
    {"{ a(x: $ v) }", "query -@1:1{@1:1 a@1:3(x@1:5:$v@1:8)};"},
    {"{ a ( x : 1 ) @ d }", "query -@1:1{@1:1 a@1:3(x@1:7:I1@1:11) @d@1:15};"},
    {"query Q($a: Int = null, $b: Boolean = false) { a }",
     "query Q@1:1($a@1:9:Int@1:13=null@1:19,$b@1:25:Boolean@1:29=false@1:39){@1:46 a@1:48};"},
};

TEST(valid_documents)
{
    arena_t a;
    gql_error_t err;
    buf_t b = BUF_INIT;
    arena_init(&a, NULL, 0);
    for (size_t i = 0; i < ARRAY_LEN(valid); i++) {
        gql_doc_t *d = parse_lim(&a, valid[i].text, strlen(valid[i].text), 0, 0, &err);
        if (!d) {
            printf("  %s\n    refused: %u:%u %s\n", valid[i].text, (unsigned)err.loc.line,
                   (unsigned)err.loc.col, err.message);
            test_failed_now = 1;
            continue;
        }
        const char *got = dump_doc(&b, d);
        if (strcmp(got, valid[i].tree) != 0) {
            printf("  %s\n    got  %s\n    want %s\n", valid[i].text, got, valid[i].tree);
            test_failed_now = 1;
        }
        arena_reset(&a);
    }
    buf_free(&b);
    arena_destroy(&a);
}

/* Decoded string values: escapes, NUL bytes kept with their length, raw UTF-8 copied. */
TEST(string_values)
{
    static const struct {
        const char *lit;
        const char *value;
        size_t n;
    } cases[] = {
        {"\"\"", "", 0},
        {"\"\\u0000\"", "\0", 1},
        {"\"a\\u{0}b\"", "a\0b", 3},
        {"\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80", 4},
        {"\"\\u{1F600}\"", "\xf0\x9f\x98\x80", 4},
        {"\"\\u{10FFFF}\"", "\xf4\x8f\xbf\xbf", 4},
        {"\"\\uFFFF\\uE000\\uD7FF\"", "\xef\xbf\xbf\xee\x80\x80\xed\x9f\xbf", 9},
        {"\"\\u00E9\\u00e9\"", "\xc3\xa9\xc3\xa9", 4},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8},
        {"\"\x7f\xc2\x80\"", "\x7f\xc2\x80", 3}, /* DEL and C1 controls are source characters */
        {"\"tab\there\"", "tab\there", 8},
        {"\"\"\"\"\"\"", "", 0},
        {"\"\"\"a\\\"\"\"\"\"\"", "a\"\"\"", 4},
    };
    arena_t a;
    gql_error_t err;
    char doc[128];
    arena_init(&a, NULL, 0);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int n = snprintf(doc, sizeof doc, "{ f(x: %s) }", cases[i].lit);
        gql_doc_t *d = parse_lim(&a, doc, (size_t)n, 0, 0, &err);
        CHECK(d != NULL);
        if (!d) {
            printf("  %s: %s\n", doc, err.message);
            continue;
        }
        const gql_value_t *v = d->defs[0].sel.items[0].args[0].value;
        CHECK_EQ_INT(v->kind, GV_STRING);
        CHECK_EQ_INT(v->n, cases[i].n);
        CHECK(v->n == cases[i].n && memcmp(v->s, cases[i].value, v->n) == 0 && v->s[v->n] == '\0');
    }
    arena_destroy(&a);
}

/* BlockStringValue() (spec 2.9.4): the spec's and graphql-js's dedent cases, values from
 * graphql-js. The table holds the text between the triple quotes. */
TEST(block_string_dedent)
{
    static const struct {
        const char *raw, *value;
    } cases[] = {
        {"\n    Hello,\n      World!\n\n    Yours,\n      GraphQL.\n  ",
         "Hello,\n  World!\n\nYours,\n  GraphQL."},
        {"\n    Hello,\n    World!\n  ", "Hello,\nWorld!"},
        {"\n\n    Hello,\n      World!\n\n    Yours,\n      GraphQL.\n\n",
         "Hello,\n  World!\n\nYours,\n  GraphQL."},
        {"  \n        \n    Hello,\n      World!\n\n    Yours,\n      GraphQL.\n        \n  ",
         "Hello,\n  World!\n\nYours,\n  GraphQL."},
        {"    Hello,\n      World!\n\n    Yours,\n      GraphQL.",
         "    Hello,\n  World!\n\nYours,\n  GraphQL."},
        {"               \n    Hello,     \n      World!   \n    ", "Hello,     \n  World!   "},
        {"\n\tHello,\n\t  World!\n", "Hello,\n  World!"},
        {"\r\n  a\r\n  b\r\n", "a\nb"},
        {"\r  a\r  b\r", "a\nb"},
        {"\n  a\r\n  b\r  c\n", "a\nb\nc"},
        {"\n  a \\\"\"\" b\n", "a \"\"\" b"},
        {"   \n  \n", ""},
        {"", ""},
        {"  x  ", "  x  "},
        {"\n  a\n      \n  b\n", "a\n    \nb"},
        {"\n  é\n   😀\n", "é\n 😀"},
        {"\n    a\n  b\n", "  a\nb"},
        {"\\\"\"\"", "\"\"\""},
        {"a\\\\\"\"\"", "a\\\"\"\""},
        {" \n\t\n x \n\t\n ", "x "},
    };
    arena_t a;
    gql_error_t err;
    buf_t doc = BUF_INIT;
    arena_init(&a, NULL, 0);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        buf_reset(&doc);
        buf_printf(&doc, "{ f(x: \"\"\"%s\"\"\") }", cases[i].raw);
        gql_doc_t *d = parse_lim(&a, doc.data, doc.len, 0, 0, &err);
        CHECK(d != NULL);
        if (!d)
            continue;
        const gql_value_t *v = d->defs[0].sel.items[0].args[0].value;
        CHECK_STRN(v->s, v->n, cases[i].value);
        CHECK(v->loc.line == 1 && v->loc.col == 8);
    }
    buf_free(&doc);
    arena_destroy(&a);
}

/* ---- invalid documents ---- */

static const struct bad_case {
    const char *text;
    size_t len;
    uint32_t line, col;
    const char *message; /* after "Syntax Error: " */
} invalid[] = {
#define BAD(lit, line, col, msg)                                                                             \
    {                                                                                                        \
        lit, sizeof(lit) - 1, line, col, msg                                                                 \
    }
    BAD("{ a(x: 0x1) }", 1, 9, "Invalid number, expected digit but got: \"x\"."),
    BAD("{ a(x: 1.) }", 1, 10, "Invalid number, expected digit but got: \")\"."),
    BAD("{ a(x: 1.e2) }", 1, 10, "Invalid number, expected digit but got: \"e\"."),
    BAD("{ a(x: 00) }", 1, 9, "Invalid number, unexpected digit after 0: \"0\"."),
    BAD("{ a(x: 01) }", 1, 9, "Invalid number, unexpected digit after 0: \"1\"."),
    BAD("{ a(x: -01) }", 1, 10, "Invalid number, unexpected digit after 0: \"1\"."),
    BAD("{ a(x: 1a) }", 1, 9, "Invalid number, expected digit but got: \"a\"."),
    BAD("{ a(x: 1_) }", 1, 9, "Invalid number, expected digit but got: \"_\"."),
    BAD("{ a(x: -) }", 1, 9, "Invalid number, expected digit but got: \")\"."),
    BAD("{ a(x: -a) }", 1, 9, "Invalid number, expected digit but got: \"a\"."),
    BAD("{ a(x: 1e) }", 1, 10, "Invalid number, expected digit but got: \")\"."),
    BAD("{ a(x: 1e+) }", 1, 11, "Invalid number, expected digit but got: \")\"."),
    BAD("{ a(x: 1.2.3) }", 1, 11, "Invalid number, expected digit but got: \".\"."),
    BAD("{ a(x: .5) }", 1, 8, "Unexpected character: \".\"."),
    BAD("{ a(x: +1) }", 1, 8, "Unexpected character: \"+\"."),
    BAD("{ a(x: 1.5e) }", 1, 12, "Invalid number, expected digit but got: \")\"."),
    BAD("{ a(x: 0.x) }", 1, 10, "Invalid number, expected digit but got: \"x\"."),
    BAD("{ a(x: 1e1.5) }", 1, 11, "Invalid number, expected digit but got: \".\"."),
    BAD("{ a(x: 12e3f) }", 1, 12, "Invalid number, expected digit but got: \"f\"."),
    BAD("{ a(x: 1", 1, 9, "Expected Name, found <EOF>."),
    BAD("{ a(x: \"abc) }", 1, 15, "Unterminated string."),
    BAD("{ a(x: \"abc\n\") }", 1, 12, "Unterminated string."),
    BAD("{ a(x: \"abc\r\n\") }", 1, 12, "Unterminated string."),
    BAD("{ a(x: \"\\x\") }", 1, 9, "Invalid character escape sequence: \"\\x\"."),
    BAD("{ a(x: \"\\'\") }", 1, 9, "Invalid character escape sequence: \"\\'\"."),
    BAD("{ a(x: \"\\u12\") }", 1, 9, "Invalid Unicode escape sequence: \"\\u12\")\"."),
    BAD("{ a(x: \"\\u12G4\") }", 1, 9, "Invalid Unicode escape sequence: \"\\u12G4\"."),
    BAD("{ a(x: \"\\uD800\") }", 1, 9, "Invalid Unicode escape sequence: \"\\uD800\"."),
    BAD("{ a(x: \"\\uDC00\") }", 1, 9, "Invalid Unicode escape sequence: \"\\uDC00\"."),
    BAD("{ a(x: \"\\uD800\\u0041\") }", 1, 9, "Invalid Unicode escape sequence: \"\\uD800\"."),
    BAD("{ a(x: \"\\uD800x\") }", 1, 9, "Invalid Unicode escape sequence: \"\\uD800\"."),
    BAD("{ a(x: \"\\uDBFF\\uDBFF\") }", 1, 9, "Invalid Unicode escape sequence: \"\\uDBFF\"."),
    BAD("{ a(x: \"\\u{}\") }", 1, 9, "Invalid Unicode escape sequence: \"\\u{}\"."),
    BAD("{ a(x: \"\\u{110000}\") }", 1, 9, "Invalid Unicode escape sequence: \"\\u{110000}\"."),
    BAD("{ a(x: \"\\u{D800}\") }", 1, 9, "Invalid Unicode escape sequence: \"\\u{D800}\"."),
    BAD("{ a(x: \"\\u{DFFF}\") }", 1, 9, "Invalid Unicode escape sequence: \"\\u{DFFF}\"."),
    BAD("{ a(x: \"\\u{000000041}\") }", 1, 9, "Invalid Unicode escape sequence: \"\\u{000000041\"."),
    BAD("{ a(x: \"\\u{41\") }", 1, 9, "Invalid Unicode escape sequence: \"\\u{41\"\"."),
    BAD("{ a(x: \"\\u{4G}\") }", 1, 9, "Invalid Unicode escape sequence: \"\\u{4G\"."),
    BAD("{ a(x: \"\\u{FFFFFFFFF}\") }", 1, 9, "Invalid Unicode escape sequence: \"\\u{FFFFFFFF\"."),
    BAD("{ a(x: \"\\", 1, 9, "Invalid character escape sequence: \"\\\"."),
    BAD("{ a(x: \"\\u", 1, 9, "Invalid Unicode escape sequence: \"\\u\"."),
    BAD("{ a(x: \"\\u{", 1, 9, "Invalid Unicode escape sequence: \"\\u{\"."),
    BAD("{ a(x: \"", 1, 9, "Unterminated string."),
    BAD("{ a(x: \"\"\"abc) }", 1, 17, "Unterminated string."),
    BAD("{ a(x: \"\"\"abc\"\") }", 1, 19, "Unterminated string."),
    BAD("{ a(x: \"\"\"\\\"\"\") }", 1, 18, "Unterminated string."),
    BAD("{ a(x: \"\"\"\n\n  x\n\"\"\" y) }", 4, 6, "Expected \":\", found \")\"."),
    BAD("{ a & b }", 1, 5, "Expected Name, found \"&\"."),
    BAD("{ a | b }", 1, 5, "Expected Name, found \"|\"."),
    BAD("{ a . b }", 1, 5, "Unexpected character: \".\"."),
    BAD("{ a .. b }", 1, 5, "Unexpected character: \".\"."),
    BAD("{ a ? }", 1, 5, "Unexpected character: \"?\"."),
    BAD("{ 'a' }", 1, 3, "Unexpected single quote character ('), did you mean to use a double quote (\")?"),
    BAD("{ a }}", 1, 6, "Unexpected \"}\"."),
    BAD("{ a", 1, 4, "Expected Name, found <EOF>."),
    BAD("{", 1, 2, "Expected Name, found <EOF>."),
    BAD("}", 1, 1, "Unexpected \"}\"."),
    BAD("{}", 1, 2, "Expected Name, found \"}\"."),
    BAD("{ a { } }", 1, 7, "Expected Name, found \"}\"."),
    BAD("{ a(): b }", 1, 5, "Expected Name, found \")\"."),
    BAD("{ a(x:) }", 1, 7, "Unexpected \")\"."),
    BAD("{ a(x: 1 }", 1, 10, "Expected Name, found \"}\"."),
    BAD("{ a: }", 1, 6, "Expected Name, found \"}\"."),
    BAD("{ a: b: c }", 1, 7, "Expected Name, found \":\"."),
    BAD("{ a @ }", 1, 7, "Expected Name, found \"}\"."),
    BAD("{ a @d( }", 1, 9, "Expected Name, found \"}\"."),
    BAD("{ a } b", 1, 7, "Unexpected Name \"b\"."),
    BAD("{ a(x: [1 }", 1, 11, "Unexpected \"}\"."),
    BAD("{ a(x: {b 1}) }", 1, 11, "Expected \":\", found Int \"1\"."),
    BAD("{ a(x: {b: }) }", 1, 12, "Unexpected \"}\"."),
    BAD("{ a(x: }) }", 1, 8, "Unexpected \"}\"."),
    BAD("{ a(x: ]) }", 1, 8, "Unexpected \"]\"."),
    BAD("{ ... }", 1, 7, "Expected \"{\", found \"}\"."),
    BAD("{ ...F { a } }", 1, 8, "Expected Name, found \"{\"."),
    BAD("{ a é }", 1, 5, "Unexpected character: U+00E9."),
    BAD("query", 1, 6, "Expected \"{\", found <EOF>."),
    BAD("query Q", 1, 8, "Expected \"{\", found <EOF>."),
    BAD("query Q(", 1, 9, "Expected \"$\", found <EOF>."),
    BAD("query () { a }", 1, 8, "Expected \"$\", found \")\"."),
    BAD("query ($a) { a }", 1, 10, "Expected \":\", found \")\"."),
    BAD("query (a: Int) { a }", 1, 8, "Expected \"$\", found Name \"a\"."),
    BAD("query ($a: ]) { a }", 1, 12, "Expected Name, found \"]\"."),
    BAD("query ($a: [Int) { a }", 1, 16, "Expected \"]\", found \")\"."),
    BAD("query ($a: Int!!) { a }", 1, 16, "Expected \"$\", found \"!\"."),
    BAD("query ($a: Int = ) { a }", 1, 18, "Unexpected \")\"."),
    BAD("Query { a }", 1, 1, "Unexpected Name \"Query\"."),
    BAD("query Q { a } query", 1, 20, "Expected \"{\", found <EOF>."),
    BAD("fragment on on T { a }", 1, 10, "Unexpected Name \"on\"."),
    BAD("fragment F T { a }", 1, 12, "Expected \"on\", found Name \"T\"."),
    BAD("fragment F on { a }", 1, 15, "Expected Name, found \"{\"."),
    BAD("fragment F on T", 1, 16, "Expected \"{\", found <EOF>."),
    BAD("fragment F on T { }", 1, 19, "Expected Name, found \"}\"."),
    BAD("{ ...on }", 1, 9, "Expected Name, found \"}\"."),
    BAD("{ ... on }", 1, 10, "Expected Name, found \"}\"."),
    BAD("{ ...on @d { a } }", 1, 9, "Expected Name, found \"@\"."),
    BAD("fragment F($a: Int) on T { a }", 1, 11, "Expected \"on\", found \"(\"."),
    BAD("query ($a: Int = $b) { a }", 1, 18, "Unexpected variable \"$b\" in constant value."),
    BAD("query ($a: Int = [$b]) { a }", 1, 19, "Unexpected variable \"$b\" in constant value."),
    BAD("query ($a: Int = { x: $b }) { a }", 1, 23, "Unexpected variable \"$b\" in constant value."),
    BAD("query ($a: Int = $) { a }", 1, 18, "Unexpected \"$\"."),
    BAD("query ($a: Int @d(x: $y)) { a }", 1, 22, "Unexpected variable \"$y\" in constant value."),
    BAD("{ a(x: $) }", 1, 9, "Expected Name, found \")\"."),
    BAD("{ a(x: $1) }", 1, 9, "Expected Name, found Int \"1\"."),
    BAD("type T { a: Int }", 1, 1, "Unexpected Name \"type\"."),
    BAD("schema { query: Q }", 1, 1, "Unexpected Name \"schema\"."),
    BAD("scalar S", 1, 1, "Unexpected Name \"scalar\"."),
    BAD("interface I { a: Int }", 1, 1, "Unexpected Name \"interface\"."),
    BAD("union U = A | B", 1, 1, "Unexpected Name \"union\"."),
    BAD("enum E { A }", 1, 1, "Unexpected Name \"enum\"."),
    BAD("input I { a: Int }", 1, 1, "Unexpected Name \"input\"."),
    BAD("directive @d on FIELD", 1, 1, "Unexpected Name \"directive\"."),
    BAD("extend type T { a: Int }", 1, 1, "Unexpected Name \"extend\"."),
    BAD("\"desc\" type T { a: Int }", 1, 1,
        "Unexpected description, descriptions are supported only on type definitions."),
    BAD("\"\"\"desc\"\"\" query { a }", 1, 1,
        "Unexpected description, descriptions are supported only on type definitions."),
    BAD("{ a } type T { b: Int }", 1, 7, "Unexpected Name \"type\"."),
    BAD("", 1, 1, "Unexpected <EOF>."),
    BAD(" ", 1, 2, "Unexpected <EOF>."),
    BAD("# only a comment", 1, 17, "Unexpected <EOF>."),
    BAD("\357\273\277", 1, 2, "Unexpected <EOF>."),
    BAD(",,,", 1, 4, "Unexpected <EOF>."),
    BAD("\n\n\r\n", 4, 1, "Unexpected <EOF>."),
    BAD("{ a }\r\n{ b", 2, 4, "Expected Name, found <EOF>."),
    BAD("{ a }\r{ b", 2, 4, "Expected Name, found <EOF>."),
    BAD("{ a }\n\n  x", 3, 3, "Unexpected Name \"x\"."),
    BAD("{ a(x: \"é😀\") } }", 1, 16, "Unexpected \"}\"."),
    BAD("\357\273\277}", 1, 2, "Unexpected \"}\"."),
    BAD("{ a(x: \"é\" \"\\z\") }", 1, 13, "Invalid character escape sequence: \"\\z\"."),
    /* NUL bytes are refused like any control character, not taken as the end */
    BAD("{ a }\0", 1, 6, "Unexpected character: U+0000."),
    BAD("{ a(x: \"a\0\") }", 1, 10, "Invalid character within String: U+0000."),
};

TEST(invalid_documents)
{
    for (size_t i = 0; i < ARRAY_LEN(invalid); i++)
        expect_error("invalid", invalid[i].text, invalid[i].len, invalid[i].line, invalid[i].col,
                     invalid[i].message);
}

/* Every control character but tab, LF and CR, wherever it stands. */
TEST(control_characters)
{
    static const struct {
        const char *before, *after;
        const char *what; /* the error's words */
    } places[] = {
        {"{ a ", " }", "Unexpected character"},
        {"{ a(x: \"s", "\") }", "Invalid character within String"},
        {"{ a(x: \"\"\"s", "\"\"\") }", "Invalid character within String"},
        {"{ a(x: \"\"\"\n  s", "\n\"\"\") }", "Invalid character within String"},
        {"{ a # s", "\n}", "Invalid character"},
        {"{ a(x: \"\\", "\") }", "Invalid character within String"},
    };
    char doc[64], msg[80];
    for (unsigned c = 0; c < 0x20; c++) {
        if (c == '\t' || c == '\n' || c == '\r')
            continue;
        for (size_t i = 0; i < ARRAY_LEN(places); i++) {
            size_t k = strlen(places[i].before);
            memcpy(doc, places[i].before, k);
            doc[k] = (char)c;
            size_t n = k + 1 + strlen(places[i].after);
            memcpy(doc + k + 1, places[i].after, n - k - 1);
            const char *nl = memchr(doc, '\n', k);
            snprintf(msg, sizeof msg, "%s: U+%04X.", places[i].what, c);
            expect_error("control", doc, n, nl ? 2 : 1, nl ? (uint32_t)(doc + k - nl) : (uint32_t)k + 1, msg);
        }
    }
}

static uint32_t code_points(const char *s)
{
    uint32_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* Ill-formed UTF-8 (RFC 3629): refused at its first byte, in names' places, strings, block
 * strings and comments alike; columns before it count code points. */
TEST(invalid_utf8)
{
    static const char *const shapes[] = {
        "\x80", /* lone continuation bytes */
        "\xbf",
        "\x80\x80",
        "\xc0\xaf", /* overlong */
        "\xc1\xbf",
        "\xe0\x80\xaf",
        "\xe0\x9f\xbf",
        "\xf0\x80\x80\xaf",
        "\xf0\x8f\xbf\xbf",
        "\xed\xa0\x80", /* UTF-16 surrogates */
        "\xed\xbf\xbf",
        "\xed\xa0\xbd\xed\xb8\x80",
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xf5\x80\x80\x80",
        "\xf7\xbf\xbf\xbf",
        "\xf8\x88\x80\x80\x80",
        "\xfe",
        "\xff",
        "\xc3", /* truncated */
        "\xc3(",
        "\xe2\x82",
        "\xe2\x82(",
        "\xf0\x9f\x98",
        "\xf0\x9f\x98(",
        "\xc3\xc3\xa9",
    };
    static const char *const places[][2] = {
        {"{ a(x: \"\xc3\xa9", "\") }"}, /* é first: columns count code points */
        {"{ a(x: \"\"\"\xf0\x9f\x98\x80", "\"\"\") }"},
        {"{ a # \xe2\x82\xac", "\n}"},
        {"{ a ", " }"},
    };
    char doc[64], msg[64];
    for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
        for (size_t p = 0; p < ARRAY_LEN(places); p++) {
            size_t k = strlen(places[p][0]), m = strlen(shapes[s]), t = strlen(places[p][1]);
            memcpy(doc, places[p][0], k);
            memcpy(doc + k, shapes[s], m);
            memcpy(doc + k + m, places[p][1], t);
            uint32_t col = code_points(places[p][0]) + 1;
            snprintf(msg, sizeof msg, "Invalid UTF-8 byte: 0x%02X.", (unsigned char)shapes[s][0]);
            /* a well-formed lead byte whose sequence goes wrong later is reported at the lead */
            expect_error("utf8", doc, k + m + t, 1, col, msg);
        }
    }
    /* the same bytes are fine once well-formed */
    static const char fine[] = "{ a(x: \"\xf4\x8f\xbf\xbf\") \xc3\xa9 }";
    expect_error("utf8", fine, sizeof fine - 1, 1, 13, "Unexpected character: U+00E9.");
}

/* A document must hold a definition: nothing at all, or only ignored tokens, is refused. */
TEST(empty_document)
{
    arena_t a;
    gql_error_t err;
    arena_init(&a, NULL, 0);
    CHECK(gql_parse(&a, NULL, 0, NULL, &err) == NULL);
    CHECK(strcmp(err.message, "Syntax Error: Unexpected <EOF>.") == 0);
    CHECK(err.loc.line == 1 && err.loc.col == 1);
    CHECK(gql_parse(&a, "\xef\xbb\xbf \t,\r\n# c", 10, NULL, NULL) == NULL); /* err may be NULL */
    CHECK(gql_parse(&a, "{a}", 3, NULL, NULL) != NULL);                      /* so may the limits */
    arena_destroy(&a);
}

/* ---- limits ---- */

TEST(token_limit)
{
    arena_t a;
    gql_error_t err;
    arena_init(&a, NULL, 0);
    /* { a ( x : 1 ) b } is 9 tokens */
    static const char doc[] = "{ a(x: 1) b }";
    gql_doc_t *d = parse_lim(&a, doc, sizeof doc - 1, 9, 0, &err);
    CHECK(d != NULL && d->ntokens == 9);
    d = parse_lim(&a, doc, sizeof doc - 1, 0, 0, &err);
    CHECK(d != NULL && d->ntokens == 9);
    CHECK(parse_lim(&a, doc, sizeof doc - 1, 8, 0, &err) == NULL);
    CHECK(strcmp(err.message, "Syntax Error: Document contains more than 8 tokens. Parsing aborted.") == 0);
    CHECK(err.loc.line == 1 && err.loc.col == 13);

    /* a huge document stops at the limit: the unterminated string past it is never read */
    buf_t b = BUF_INIT;
    buf_append_lit(&b, "{\n");
    for (int i = 0; i < 200000; i++)
        buf_append_lit(&b, "a\n");
    buf_append_lit(&b, "\"...");
    CHECK(parse_lim(&a, b.data, b.len, 1000, 0, &err) == NULL);
    CHECK(strstr(err.message, "more than 1000 tokens") != NULL);
    CHECK(err.loc.line == 1001 && err.loc.col == 1);
    CHECK(parse_lim(&a, b.data, b.len, 0, 0, &err) == NULL);
    CHECK(strcmp(err.message, "Syntax Error: Unterminated string.") == 0);
    CHECK(err.loc.line == 200002 && err.loc.col == 5);

    /* without a limit, a document of 200,002 tokens is fine */
    b.len -= 4;
    buf_putc(&b, '}');
    arena_reset(&a);
    d = parse_lim(&a, b.data, b.len, 0, 0, &err);
    CHECK(d != NULL && d->ntokens == 200002 && d->defs[0].sel.n == 200000);
    buf_free(&b);
    arena_destroy(&a);
}

typedef struct shape {
    const char *prefix, *unit, *middle, *closer, *suffix;
    int base; /* levels the prefix and middle open */
} shape_t;

/* prefix, unit depth times, middle, closer depth times, suffix; unclosed: prefix and the units. */
static void nested(buf_t *b, const shape_t *s, int depth, bool closed)
{
    buf_reset(b);
    buf_printf(b, "%s", s->prefix);
    for (int i = 0; i < depth; i++)
        buf_printf(b, "%s", s->unit);
    if (!closed)
        return;
    buf_printf(b, "%s", s->middle);
    for (int i = 0; i < depth; i++)
        buf_printf(b, "%s", s->closer);
    buf_printf(b, "%s", s->suffix);
}

TEST(nesting_limit)
{
    static const shape_t shapes[] = {
        {"", "{a", "", "}", "", 0},                       /* selection sets */
        {"{a", "{...on T", "{a}", "}", "}", 2},           /* inline fragments */
        {"{a(x:", "[", "", "]", ")}", 1},                 /* list values */
        {"{a(x:", "{b:", "1", "}", ")}", 1},              /* object values */
        {"{a(x:", "[{b:", "1", "}]", ")}", 1},            /* both, two levels a unit */
        {"query($v:[Int]=", "[", "", "]", "){a}", 0},     /* const values */
        {"query($v:", "[", "Int", "]", "){a}", 0},        /* list types */
        {"query($v:", "[", "Int!", "]!", "){a}", 0},      /* non-null list types */
        {"{a @d(x:", "[", "", "]", ")}", 1},              /* directive arguments */
        {"fragment F on T {a(x:", "[", "", "]", ")}", 1}, /* in a fragment */
    };
    arena_t a;
    gql_error_t err;
    buf_t b = BUF_INIT;
    arena_init(&a, NULL, 0);
    for (size_t i = 0; i < ARRAY_LEN(shapes); i++) {
        const shape_t *s = &shapes[i];
        int per_unit = s->unit[0] == '[' && s->unit[1] == '{' ? 2 : 1;
        /* at the default limit of 64: fine */
        int fit = (64 - s->base) / per_unit;
        nested(&b, s, fit, true);
        gql_doc_t *d = parse_lim(&a, b.data, b.len, 0, 0, &err);
        if (!d)
            printf("  shape %zu, depth %d: %s\n", i, fit, err.message);
        CHECK(d != NULL);
        /* one unit more: refused */
        nested(&b, s, fit + 1, true);
        CHECK(parse_lim(&a, b.data, b.len, 0, 0, &err) == NULL);
        CHECK(strcmp(err.message,
                     "Syntax Error: Document is nested more than 64 levels deep. Parsing aborted.") == 0);
        /* 10,000 levels, unclosed or closed, under any limit asked for: refused, no stack overflow */
        for (int closed = 0; closed < 2; closed++) {
            nested(&b, s, 10000, closed);
            CHECK(parse_lim(&a, b.data, b.len, 0, 0, &err) == NULL);
            CHECK(strstr(err.message, "nested more than 64 levels") != NULL);
            CHECK(parse_lim(&a, b.data, b.len, 0, UINT32_MAX, &err) == NULL);
            CHECK(strstr(err.message, "nested more than 256 levels") != NULL);
        }
        arena_reset(&a);
    }
    /* a lower limit */
    CHECK(parse_lim(&a, "{ a { b } }", 11, 0, 2, &err) != NULL);
    CHECK(parse_lim(&a, "{ a { b { c } } }", 17, 0, 2, &err) == NULL);
    CHECK(strcmp(err.message, "Syntax Error: Document is nested more than 2 levels deep. Parsing aborted.") ==
          0);
    CHECK(err.loc.line == 1 && err.loc.col == 9);
    CHECK(parse_lim(&a, "{ a(x: [1]) }", 13, 0, 1, &err) == NULL);
    CHECK(err.loc.col == 8);
    /* a limit above the cap (256) is the cap */
    nested(&b, &shapes[0], 256, true);
    CHECK(parse_lim(&a, b.data, b.len, 0, 5000, &err) != NULL);
    nested(&b, &shapes[0], 257, true);
    CHECK(parse_lim(&a, b.data, b.len, 0, 5000, &err) == NULL);
    buf_free(&b);
    arena_destroy(&a);
}

/* ---- properties over generated documents ---- */

typedef struct gen {
    uint64_t state;
    buf_t b;
    uint32_t tokens, fields;
} gen_t;

static uint32_t rnd(gen_t *g, uint32_t n)
{
    /* xorshift64*: deterministic across platforms */
    g->state ^= g->state >> 12;
    g->state ^= g->state << 25;
    g->state ^= g->state >> 27;
    return (uint32_t)((g->state * 0x2545F4914F6CDD1DULL) >> 32) % n;
}

/* One token, after some ignored tokens. */
static void tok(gen_t *g, const char *text)
{
    static const char *const ignored[] = {
        " ", "  ", "\n", "\r\n", "\r", ",", "\t", " # comment ,{\n", ", ", "\xef\xbb\xbf"};
    buf_printf(&g->b, "%s%s", ignored[rnd(g, ARRAY_LEN(ignored))], text);
    g->tokens++;
}

static const char *gen_name(gen_t *g)
{
    static const char *const names[] = {"a",    "on",     "query",      "fragment", "true",
                                        "null", "_x9",    "Type",       "mutation", "subscription",
                                        "type", "schema", "__typename", "ENUM"};
    return names[rnd(g, ARRAY_LEN(names))];
}

static void gen_value(gen_t *g, int depth, bool is_const)
{
    static const char *const scalars[] = {"0",
                                          "-0",
                                          "42",
                                          "-7",
                                          "123456789012",
                                          "1.5",
                                          "-0.25e-3",
                                          "6E10",
                                          "0.0",
                                          "1e+2",
                                          "\"\"",
                                          "\"a\\nb\\\"\"",
                                          "\"\\u00e9\\u{1F600}\\uD83D\\uDE00\"",
                                          "\"\xc3\xa9 \xf0\x9f\x98\x80\"",
                                          "\"\"\"\n  x\n    y\n\"\"\"",
                                          "\"\"\"\"\"\"",
                                          "true",
                                          "false",
                                          "null",
                                          "RED",
                                          "on",
                                          "query"};
    uint32_t k = rnd(g, depth < 4 ? 6 : 4);
    if (k < 3) {
        tok(g, scalars[rnd(g, ARRAY_LEN(scalars))]);
    } else if (k == 3) {
        if (is_const) {
            tok(g, "RED");
        } else {
            tok(g, "$");
            tok(g, gen_name(g));
        }
    } else if (k == 4) {
        tok(g, "[");
        for (uint32_t i = rnd(g, 4); i > 0; i--)
            gen_value(g, depth + 1, is_const);
        tok(g, "]");
    } else {
        tok(g, "{");
        for (uint32_t i = rnd(g, 4); i > 0; i--) {
            tok(g, gen_name(g));
            tok(g, ":");
            gen_value(g, depth + 1, is_const);
        }
        tok(g, "}");
    }
}

static void gen_args(gen_t *g, bool is_const)
{
    if (rnd(g, 2))
        return;
    tok(g, "(");
    for (uint32_t i = 1 + rnd(g, 3); i > 0; i--) {
        tok(g, gen_name(g));
        tok(g, ":");
        gen_value(g, 0, is_const);
    }
    tok(g, ")");
}

static void gen_dirs(gen_t *g, bool is_const)
{
    for (uint32_t i = rnd(g, 4) / 2; i > 0; i--) {
        tok(g, "@");
        tok(g, gen_name(g));
        gen_args(g, is_const);
    }
}

static void gen_type(gen_t *g, int depth)
{
    if (depth < 3 && rnd(g, 3) == 0) {
        tok(g, "[");
        gen_type(g, depth + 1);
        tok(g, "]");
    } else {
        tok(g, gen_name(g));
    }
    if (rnd(g, 2))
        tok(g, "!");
}

static void gen_selset(gen_t *g, int depth)
{
    tok(g, "{");
    for (uint32_t i = 1 + rnd(g, 3); i > 0; i--) {
        uint32_t k = depth > 5 ? 0 : rnd(g, 6);
        if (k < 3) {
            g->fields++;
            if (rnd(g, 3) == 0) {
                tok(g, gen_name(g));
                tok(g, ":");
            }
            tok(g, gen_name(g));
            gen_args(g, false);
            gen_dirs(g, false);
            if (depth < 5 && rnd(g, 2))
                gen_selset(g, depth + 1);
        } else if (k == 3) {
            tok(g, "...");
            tok(g, rnd(g, 2) ? "F" : "query");
            gen_dirs(g, false);
        } else {
            tok(g, "...");
            if (rnd(g, 2)) {
                tok(g, "on");
                tok(g, gen_name(g));
            }
            gen_dirs(g, false);
            gen_selset(g, depth + 1);
        }
    }
    tok(g, "}");
}

static void gen_document(gen_t *g)
{
    static const char *const ops[] = {"query", "mutation", "subscription"};
    buf_reset(&g->b);
    g->tokens = g->fields = 0;
    for (uint32_t i = 1 + rnd(g, 3); i > 0; i--) {
        uint32_t k = rnd(g, 5);
        if (k == 0) {
            gen_selset(g, 0);
            continue;
        }
        if (k == 1) {
            tok(g, "fragment");
            tok(g, rnd(g, 2) ? "F" : "query");
            tok(g, "on");
            tok(g, gen_name(g));
        } else {
            tok(g, ops[rnd(g, 3)]);
            if (rnd(g, 2))
                tok(g, gen_name(g));
            if (rnd(g, 2)) {
                tok(g, "(");
                for (uint32_t j = 1 + rnd(g, 3); j > 0; j--) {
                    tok(g, "$");
                    tok(g, gen_name(g));
                    tok(g, ":");
                    gen_type(g, 0);
                    if (rnd(g, 2)) {
                        tok(g, "=");
                        gen_value(g, 0, true);
                    }
                    gen_dirs(g, true);
                }
                tok(g, ")");
            }
        }
        gen_dirs(g, false);
        gen_selset(g, 0);
    }
    if (rnd(g, 2))
        buf_append_lit(&g->b, " # the end");
}

static uint32_t count_fields(const gql_selset_t *s)
{
    uint32_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += (s->items[i].kind == GS_FIELD) + count_fields(&s->items[i].sel);
    return n;
}

/* Generated documents of valid shape parse, with every token counted and every field found. */
TEST(random_valid_documents)
{
    gen_t g = {.state = 0x9e3779b97f4a7c15ULL};
    arena_t a;
    gql_error_t err;
    arena_init(&a, NULL, 0);
    for (int i = 0; i < 3000 && !test_failed_now; i++) {
        gen_document(&g);
        gql_doc_t *d = parse_lim(&a, g.b.data, g.b.len, 0, 0, &err);
        CHECK(d != NULL);
        if (!d) {
            printf("  %u:%u %s in:\n%.*s\n", (unsigned)err.loc.line, (unsigned)err.loc.col, err.message,
                   (int)g.b.len, g.b.data);
            break;
        }
        CHECK_EQ_INT(d->ntokens, g.tokens);
        uint32_t fields = 0;
        for (size_t k = 0; k < d->ndefs; k++)
            fields += count_fields(&d->defs[k].sel);
        CHECK_EQ_INT(fields, g.fields);
        arena_reset(&a);
    }
    buf_free(&g.b);
    arena_destroy(&a);
}

/* Random byte edits of valid documents never crash (ASan and UBSan builds check the memory):
 * each parse succeeds or fails with a well-formed error. */
TEST(random_mutations)
{
    static const char bytes[] =
        "{}()[]:$@!=.|&\"\\#,\n\r\t -+0123456789eEuxaon\x00\x01\x7f\x80\xbf\xc3\xe2\xed\xf0\xf4\xff";
    gen_t g = {.state = 0x2545f4914f6cdd1dULL};
    arena_t a;
    gql_error_t err;
    uint32_t ok = 0, refused = 0;
    arena_init(&a, NULL, 0);
    for (int i = 0; i < 3000; i++) {
        gen_document(&g);
        for (uint32_t m = 1 + rnd(&g, 4); m > 0; m--) {
            size_t at = rnd(&g, (uint32_t)g.b.len + 1);
            char c = bytes[rnd(&g, sizeof bytes - 1)];
            uint32_t op = rnd(&g, 3);
            if (op == 0 || at == g.b.len) { /* insert */
                buf_putc(&g.b, 0);
                memmove(g.b.data + at + 1, g.b.data + at, g.b.len - at - 1);
                g.b.data[at] = c;
            } else if (op == 1) { /* delete */
                memmove(g.b.data + at, g.b.data + at + 1, g.b.len - at - 1);
                g.b.len--;
            } else {
                g.b.data[at] = c;
            }
        }
        /* an exact-size heap copy, so a read past the end is caught */
        char *copy = malloc(g.b.len ? g.b.len : 1);
        memcpy(copy, g.b.data, g.b.len);
        if (parse_lim(&a, copy, g.b.len, rnd(&g, 2) ? 0 : 50, rnd(&g, 2) ? 0 : 4, &err)) {
            ok++;
        } else {
            refused++;
            CHECK(error_well_formed(&err));
        }
        free(copy);
        arena_reset(&a);
    }
    CHECK(ok > 0 && refused > 0);
    buf_free(&g.b);
    arena_destroy(&a);
}

TEST_MAIN()

#include "core/csv.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

/* Records rendered as "f1|f2;f1|f2;" so cases compare as strings; bytes are kept as they are. */
typedef struct {
    char out[4096];
    size_t n;
} render_t;

static bool collect(const csv_record_t *rec, void *arg)
{
    render_t *r = arg;
    for (int i = 0; i < rec->nfields; i++) {
        if (i && r->n < sizeof(r->out))
            r->out[r->n++] = '|';
        for (uint32_t k = 0; k < rec->len[i] && r->n < sizeof(r->out); k++)
            r->out[r->n++] = rec->data[rec->off[i] + k];
    }
    if (r->n < sizeof(r->out))
        r->out[r->n++] = ';';
    return true;
}

/* Parses in chunks of `step` bytes (0: whole); NULL on an error, else the rendering. */
static const char *parse(const char *in, size_t n, size_t step, render_t *r, char *err, size_t errlen)
{
    csv_parser_t p;
    memset(r, 0, sizeof(*r));
    csv_init(&p, collect, r);
    bool ok = true;
    if (!step)
        step = n ? n : 1;
    for (size_t i = 0; ok && i < n; i += step)
        ok = csv_feed(&p, in + i, i + step <= n ? step : n - i);
    if (ok)
        ok = csv_finish(&p);
    if (!ok && err)
        snprintf(err, errlen, "%s", p.error);
    csv_free(&p);
    if (!ok)
        return NULL;
    r->out[r->n < sizeof(r->out) ? r->n : sizeof(r->out) - 1] = '\0';
    return r->out;
}

typedef struct {
    const char *name, *in, *want; /* want NULL: refused */
} ccase_t;

static const ccase_t cases[] = {
    /* after csv-spectrum (github.com/max-mapper/csv-spectrum) */
    {"simple", "a,b,c\n1,2,3\n", "a|b|c;1|2|3;"},
    {"simple_crlf", "a,b,c\r\n1,2,3\r\n", "a|b|c;1|2|3;"},
    {"comma_in_quotes", "first,last,address,city,zip\nJohn,Doe,120 any st.,\"Anytown, WW\",08123\n",
     "first|last|address|city|zip;John|Doe|120 any st.|Anytown, WW|08123;"},
    {"empty", "a,b,c\n1,\"\",\"\"\n2,3,4\n", "a|b|c;1||;2|3|4;"},
    {"empty_crlf", "a,b,c\r\n1,\"\",\"\"\r\n2,3,4\r\n", "a|b|c;1||;2|3|4;"},
    {"escaped_quotes", "a,b\n1,\"ha \"\"ha\"\" ha\"\n3,4\n", "a|b;1|ha \"ha\" ha;3|4;"},
    {"json", "key,val\n1,\"{\"\"type\"\": \"\"Point\"\"}\"\n", "key|val;1|{\"type\": \"Point\"};"},
    {"newlines", "a,b,c\n1,2,3\n\"Once upon \na time\",5,6\n7,8,9\n",
     "a|b|c;1|2|3;Once upon \na time|5|6;7|8|9;"},
    {"newlines_crlf", "a,b,c\r\n1,2,3\r\n\"Once upon \r\na time\",5,6\r\n7,8,9\r\n",
     "a|b|c;1|2|3;Once upon \r\na time|5|6;7|8|9;"},
    {"quotes_and_newlines", "a,b\n1,\"ha \n\"\"ha\"\" \nha\"\n3,4\n", "a|b;1|ha \n\"ha\" \nha;3|4;"},
    {"utf8", "a,b,c\n1,2,3\n4,5,\xca\xa4\n", "a|b|c;1|2|3;4|5|\xca\xa4;"},
    {"location_coordinates",
     "Phone,Coordinates\n0209,37\xc2\xb0"
     "36'37.8\"N 121\xc2\xb0"
     "2'17.9\"W",
     "Phone|Coordinates;0209|37\xc2\xb0"
     "36'37.8\"N 121\xc2\xb0"
     "2'17.9\"W;"},
    /* ours */
    {"bom", "\xef\xbb\xbfname\nAcme\n", "name;Acme;"},
    {"bom_only_once", "\xef\xbb\xbf\xef\xbb\xbfx\n", "\xef\xbb\xbfx;"},
    {"partial_bom_is_data", "\xef\xbbx\n", "\xef\xbbx;"},
    {"no_final_newline", "a,b\n1,2", "a|b;1|2;"},
    {"trailing_comma", "a,b\n1,", "a|b;1|;"},
    {"trailing_comma_nl", "a,\n", "a|;"},
    {"empty_input", "", ""},
    {"blank_line", "a\n\nb\n", "a;;b;"},
    {"lone_cr_is_data", "a\rb,c\n", "a\rb|c;"},
    {"final_cr", "a\r", "a\r;"},
    {"quoted_final_crlf", "\"a\"\r\n", "a;"},
    {"quoted_comma_crlf", "\"a,b\",\"c\r\nd\"\r\n", "a,b|c\r\nd;"},
    {"only_quotes", "\"\"\"\"\n", "\";"},
    {"empty_quoted_last", "a,\"\"", "a|;"},
    {"refuse_unclosed", "a,\"b\n", NULL},
    {"refuse_text_after_quote", "\"a\"b,c\n", NULL},
    {"refuse_space_after_quote", "\"a\" ,c\n", NULL},
    {"refuse_cr_text_after_quote", "\"a\"\rb\n", NULL},
};

TEST(cases_whole_and_at_every_split)
{
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t n = strlen(cases[c].in);
        for (size_t step = 0; step <= (n ? n : 1); step++) {
            render_t r;
            char err[128] = "";
            const char *got = parse(cases[c].in, n, step, &r, err, sizeof(err));
            bool ok = cases[c].want ? got && strcmp(got, cases[c].want) == 0 : got == NULL && err[0];
            if (!ok)
                printf("  %s (chunks of %zu): got %s %s\n", cases[c].name, step, got ? got : "(refused)",
                       err);
            CHECK(ok);
        }
    }
}

TEST(errors_name_the_record)
{
    render_t r;
    char err[128];
    CHECK(parse("a\nb\n\"c\" x\n", 10, 0, &r, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "record 3") != NULL);
}

TEST(limits_refuse_instead_of_growing)
{
    static char big[CSV_MAX_RECORD + 16];
    memset(big, 'x', sizeof(big));
    render_t r;
    char err[128] = "";
    CHECK(parse(big, sizeof(big), 4096, &r, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "1 MiB") != NULL);
    char many[2 * CSV_MAX_FIELDS + 8];
    memset(many, ',', sizeof(many));
    many[sizeof(many) - 1] = '\n';
    CHECK(parse(many, sizeof(many), 0, &r, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "256 fields") != NULL);
}

static int stop_after;
static bool stopper(const csv_record_t *rec, void *arg)
{
    (void)arg;
    return (int)rec->number < stop_after;
}

TEST(the_callback_can_stop)
{
    csv_parser_t p;
    stop_after = 2;
    csv_init(&p, stopper, NULL);
    CHECK(!csv_feed(&p, "a\nb\nc\n", 6));
    CHECK(p.rec.number == 2 && p.stopped);
    CHECK(!csv_feed(&p, "d\n", 2));
    csv_free(&p);
}

/* Property: any bytes, any split: the same records or the same refusal, never a crash. */
TEST(random_inputs_parse_the_same_at_any_split)
{
    static const char alphabet[] = {'a', ',', '"', '\n', '\r', 'b', '\xef', '\xbb', '\xbf', ' '};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int t = 0; t < 3000; t++) {
        char in[48];
        size_t n = (size_t)(t % 48);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            in[i] = alphabet[x % sizeof(alphabet)];
        }
        render_t whole, split;
        char e1[128] = "", e2[128] = "";
        const char *a = parse(in, n, 0, &whole, e1, sizeof(e1));
        for (size_t step = 1; step <= n; step++) {
            const char *b = parse(in, n, step, &split, e2, sizeof(e2));
            bool same = (a == NULL) == (b == NULL) && (!a || strcmp(a, b) == 0) && (a || strcmp(e1, e2) == 0);
            if (!same)
                printf("  input %d differs at chunks of %zu\n", t, step);
            CHECK(same);
        }
    }
}

TEST_MAIN()

#include "cmd/seed.h"
#include "cmd/cmd.h"
#include "core/config.h"
#include "cmd/cli.h"
#include "cmd/keys.h"
#include "db/migrate.h"
#include "core/common.h"
#include "core/crypto.h"
#include "core/timestamp.h"

#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DAY              86400LL
#define HOUR             3600LL
#define NORGS            3
#define COPY_FLUSH_BYTES (1 << 20)

/* ---- word lists: names and text for the demo rows ---- */

static const char *const first_names[] = {
    "James",   "Mary",    "Robert",   "Patricia", "John",    "Jennifer",  "Michael",  "Linda",
    "David",   "Elena",   "William",  "Barbara",  "Richard", "Susan",     "Joseph",   "Jessica",
    "Thomas",  "Sarah",   "Charles",  "Karen",    "Daniel",  "Lisa",      "Matthew",  "Nancy",
    "Anthony", "Betty",   "Mark",     "Sandra",   "Steven",  "Ashley",    "Paul",     "Emily",
    "Andrew",  "Donna",   "Joshua",   "Michelle", "Kevin",   "Carol",     "Brian",    "Amanda",
    "George",  "Melissa", "Timothy",  "Deborah",  "Ryan",    "Stephanie", "Jacob",    "Rebecca",
    "Gary",    "Sharon",  "Nicholas", "Laura",    "Eric",    "Cynthia",   "Jonathan", "Amy",
    "Priya",   "Wei",     "Aisha",    "Mateo",    "Sofia",   "Lucas",     "Yuki",     "Omar",
};
static const char *const last_names[] = {
    "Smith",     "Johnson",  "Williams",  "Brown",    "Jones",    "Garcia",   "Miller",   "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez",    "Gonzalez", "Wilson",   "Anderson", "Thomas",
    "Taylor",    "Moore",    "Jackson",   "Martin",   "Lee",      "Perez",    "Thompson", "White",
    "Harris",    "Sanchez",  "Clark",     "Ramirez",  "Lewis",    "Robinson", "Walker",   "Young",
    "Allen",     "King",     "Wright",    "Scott",    "Torres",   "Nguyen",   "Hill",     "Flores",
    "Green",     "Adams",    "Nelson",    "Baker",    "Hall",     "Rivera",   "Campbell", "Mitchell",
    "Carter",    "Roberts",  "Patel",     "Kim",      "Chen",     "Singh",    "Murphy",   "Cook",
    "Rogers",    "Morgan",   "Cooper",    "Peterson", "Reed",     "Bailey",   "Kelly",    "Howard",
};
static const char *const company_prefixes[] = {
    "Blue",     "Apex",      "North",    "Silver",  "Bright", "Cedar",    "Summit",  "Pioneer",  "Quantum",
    "Harbor",   "Iron",      "Golden",   "Crystal", "Red",    "Green",    "Swift",   "Vertex",   "Nova",
    "Atlas",    "Polar",     "Coastal",  "Granite", "Maple",  "Eagle",    "Falcon",  "Lunar",    "Solar",
    "Crimson",  "Evergreen", "Liberty",  "Prime",   "Royal",  "Sterling", "Urban",   "Vivid",    "Zenith",
    "Alpine",   "Bold",      "Clear",    "Delta",   "Echo",   "Frontier", "Global",  "Horizon",  "Insight",
    "Keystone", "Lakeside",  "Meridian", "Noble",   "Oak",    "Pacific",  "Radiant", "Sapphire", "Titan",
    "Unity",    "Valley",    "Western",  "Willow",  "Ember",  "Aurora",
};
static const char *const company_nouns[] = {
    "River",  "Peak",   "Stone",  "Field", "Bridge", "Wave",  "Forge", "Leaf",   "Point", "Star",
    "Cloud",  "Path",   "Gate",   "Ridge", "Bay",    "Creek", "Grove", "Hill",   "Lake",  "Rock",
    "Spring", "Wind",   "Fire",   "Light", "Shore",  "Trail", "Tower", "Works",  "Line",  "Mark",
    "Port",   "Hub",    "Core",   "Logic", "Signal", "Pulse", "Spark", "Stream", "Vista", "Crest",
    "Arc",    "Beacon", "Circle", "Cove",  "Dale",   "Edge",  "Fort",  "Glen",   "Haven", "Isle",
    "Key",    "Lane",   "Mill",   "Nest",  "Orbit",  "Pine",  "Quay",  "Row",    "Sky",   "Vale",
};
static const char *const company_suffixes[] = {
    "Labs",  "Systems", "Logistics", "Analytics", "Health",   "Capital",
    "Foods", "Energy",  "Robotics",  "Media",     "Partners", "Software",
};
/* The industry a company of each suffix usually has (index into industries). */
static const unsigned char suffix_industry[] = {0, 0, 5, 0, 2, 3, 12, 6, 1, 8, 14, 0};
static const char *const industries[] = {
    "Software",    "Manufacturing", "Healthcare", "Financial Services", "Retail",      "Logistics",
    "Energy",      "Education",     "Media",      "Real Estate",        "Hospitality", "Telecommunications",
    "Agriculture", "Construction",  "Consulting", "Government",
};
static const char *const tlds[] = {".com", ".io", ".co", ".net", ".ai", ".tech"};
static const char *const free_mail[] = {"gmail.com", "outlook.com", "yahoo.com", "proton.me"};
static const char *const sizes[] = {"1-10", "11-50", "51-200", "201-1000", "1000+"};
static const unsigned size_weights[] = {20, 30, 25, 15, 10};
static const char *const titles[] = {
    "CEO",
    "CTO",
    "CFO",
    "COO",
    "Founder",
    "VP of Sales",
    "VP Engineering",
    "Head of Marketing",
    "Sales Director",
    "Procurement Manager",
    "Operations Manager",
    "IT Director",
    "Product Manager",
    "Account Executive",
    "Office Manager",
    "Head of Partnerships",
    "Finance Manager",
    "Engineering Manager",
    "Marketing Manager",
    "Purchasing Lead",
};
static const char *const products[] = {
    "Annual Subscription", "Enterprise License",   "Pilot Program",      "Platform Upgrade",
    "Support Renewal",     "Expansion Seats",      "Onboarding Package", "Data Migration",
    "Analytics Add-on",    "Multi-year Agreement", "Team Plan",          "Security Review",
    "Custom Integration",  "Training Workshop",    "Managed Service",    "Hardware Bundle",
};
static const char *const activity_types[] = {"call", "email", "meeting", "note", "demo"};
static const unsigned activity_type_weights[] = {25, 35, 15, 15, 10};
/* Subject = before + who (a contact's first name or a company's name) + after, per type. */
static const char *const subjects[][4][2] = {
    {{"Discovery call with ", ""},
     {"Follow-up call with ", ""},
     {"Pricing call with ", ""},
     {"Check-in call with ", ""}},
    {{"Re: proposal for ", ""},
     {"Intro email to ", ""},
     {"Sent case studies to ", ""},
     {"Contract questions from ", ""}},
    {{"Quarterly review with ", ""},
     {"Kick-off meeting with ", ""},
     {"Onsite visit at ", ""},
     {"Negotiation meeting with ", ""}},
    {{"Notes on ", ""}, {"Budget notes for ", ""}, {"Decision makers at ", ""}, {"Risks flagged by ", ""}},
    {{"Product demo for ", ""},
     {"Technical demo for ", ""},
     {"Live demo with ", ""},
     {"Follow-up demo for ", " team"}},
};
static const char *const sentences[] = {
    "Discussed current tooling and pain points in the sales process.",
    "They are evaluating two other vendors this quarter.",
    "Budget is approved for the next fiscal year.",
    "Asked for a detailed pricing breakdown by seat.",
    "Security questionnaire needs to be completed before legal review.",
    "Champion is enthusiastic but needs buy-in from finance.",
    "Agreed to a pilot with a small team first.",
    "Timeline slipped because of an internal reorganization.",
    "Requested references from customers in the same industry.",
    "Integration with their data warehouse is a must-have.",
    "Procurement wants a discount for a multi-year commitment.",
    "Next step is a call with the technical lead.",
    "Sent over the updated proposal and the order form.",
    "They liked the reporting dashboards the most.",
    "Concerned about onboarding time for new users.",
    "Decision expected by the end of the month.",
    "Legal is reviewing the data processing agreement.",
    "Competitor offered a lower price but weaker support.",
    "Scheduled a workshop with their operations team.",
    "The CFO joined the call and asked about ROI.",
    "No response yet, will follow up next week.",
    "Expansion to two more regions is likely next year.",
    "They want single sign-on and audit logs.",
    "Shared a recording of the demo with the wider team.",
};
/* Task title = before + what (a company's name, or a product for deal tasks) + after. */
static const char *const task_titles[][2] = {
    {"Send proposal to ", ""},     {"Follow up with ", ""},       {"Schedule demo for ", ""},
    {"Prepare contract for ", ""}, {"Call ", " about renewal"},   {"Update account notes for ", ""},
    {"Review pricing for ", ""},   {"Book onsite visit at ", ""}, {"Send case study to ", ""},
    {"Confirm budget with ", ""},
};
static const unsigned priority_weights[] = {25, 55, 20};
static const char *const priorities[] = {"low", "normal", "high"};

typedef struct {
    const char *name, *color;
    int probability;
    const char *kind;
    unsigned weight; /* share of deals in this stage, percent */
} stage_def_t;

static const stage_def_t stage_defs[] = {
    {"Lead", "#94a3b8", 10, "open", 25},     {"Qualified", "#60a5fa", 25, "open", 20},
    {"Proposal", "#a78bfa", 50, "open", 15}, {"Negotiation", "#f59e0b", 75, "open", 10},
    {"Won", "#22c55e", 100, "won", 18},      {"Lost", "#ef4444", 0, "lost", 12},
};
#define NSTAGES ((int64_t)ARRAY_LEN(stage_defs))

typedef struct {
    const char *name, *tier, *mail_domain;
    unsigned share; /* percent of the scaled rows */
} org_def_t;

static const org_def_t org_defs[NORGS] = {
    {"Northwind Traders", "professional", "northwind.example", 40},
    {"Globex Corporation", "standard", "globex.example", 20},
    {"Benchmark Org", "unlimited", "benchmark.example", 40},
};

/* ---- deterministic PRNG (splitmix64): one stream per table ---- */

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
    return n ? (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64) : 0;
}

static int64_t rng_range(rng_t *r, int64_t lo, int64_t hi)
{
    return hi > lo ? lo + (int64_t)rng_below(r, (uint64_t)(hi - lo)) : lo;
}

static bool rng_pct(rng_t *r, unsigned pct)
{
    return rng_below(r, 100) < pct;
}

static size_t rng_weighted(rng_t *r, const unsigned *w, size_t n)
{
    unsigned total = 0;
    for (size_t i = 0; i < n; i++)
        total += w[i];
    unsigned x = (unsigned)rng_below(r, total);
    for (size_t i = 0; i < n; i++) {
        if (x < w[i])
            return i;
        x -= w[i];
    }
    return n - 1;
}

/* Index in [0, n) skewed toward 0: a few rows get many children, most get a few. */
static uint64_t rng_skewed(rng_t *r, uint64_t n)
{
    double u = (double)(rng_next(r) >> 11) / 9007199254740992.0;
    uint64_t i = (uint64_t)(u * u * (double)n);
    return i < n ? i : n - 1;
}

#define PICK(r, list) ((list)[rng_below((r), ARRAY_LEN(list))])

/* ---- COPY text-format writer ---- */

typedef struct {
    PGconn *conn;
    char *p;
    size_t len, cap;
    bool row_start;
    int64_t rows;
} copy_t;

static void copy_reserve(copy_t *c, size_t n)
{
    if (c->len + n > c->cap) {
        while (c->len + n > c->cap)
            c->cap = c->cap ? c->cap * 2 : COPY_FLUSH_BYTES * 2;
        c->p = xrealloc(c->p, c->cap);
    }
}

static void copy_sep(copy_t *c)
{
    copy_reserve(c, 1);
    if (!c->row_start)
        c->p[c->len++] = '\t';
    c->row_start = false;
}

/* A text field, escaped for COPY's text format. */
static void copy_str(copy_t *c, const char *s)
{
    copy_sep(c);
    size_t n = strlen(s);
    copy_reserve(c, 2 * n);
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '\\' || ch == '\t' || ch == '\n' || ch == '\r') {
            c->p[c->len++] = '\\';
            ch = ch == '\t' ? 't' : ch == '\n' ? 'n' : ch == '\r' ? 'r' : '\\';
        }
        c->p[c->len++] = ch;
    }
}

static void copy_null(copy_t *c)
{
    copy_sep(c);
    copy_reserve(c, 2);
    memcpy(c->p + c->len, "\\N", 2);
    c->len += 2;
}

static void copy_i64(copy_t *c, int64_t v)
{
    char tmp[24];
    copy_sep(c);
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    copy_reserve(c, (size_t)n);
    memcpy(c->p + c->len, tmp, (size_t)n);
    c->len += (size_t)n;
}

/* A reference: NULL when id is 0. */
static void copy_ref(copy_t *c, int64_t id)
{
    if (id)
        copy_i64(c, id);
    else
        copy_null(c);
}

static void copy_raw(copy_t *c, const char *s, size_t n)
{
    copy_sep(c);
    copy_reserve(c, n);
    memcpy(c->p + c->len, s, n);
    c->len += n;
}

/* A timestamptz in UTC from Unix seconds. */
static void copy_ts(copy_t *c, int64_t t)
{
    char tmp[TS_TEXT_MAX];
    copy_raw(c, tmp, ts_format((ts_t){t, 0}, false, tmp));
}

static void copy_date(copy_t *c, int64_t t)
{
    int64_t y;
    unsigned m, d;
    ts_civil_from_days(t / DAY, &y, &m, &d);
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%04d-%02u-%02u", (int)y, m, d);
    copy_raw(c, tmp, (size_t)n);
}

static void copy_money(copy_t *c, int64_t cents)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
    copy_raw(c, tmp, (size_t)n);
}

/* Sends the buffer when it is large; false when the connection failed. */
static bool copy_end_row(copy_t *c)
{
    copy_reserve(c, 1);
    c->p[c->len++] = '\n';
    c->row_start = true;
    c->rows++;
    if (c->len < COPY_FLUSH_BYTES)
        return true;
    bool ok = PQputCopyData(c->conn, c->p, (int)c->len) == 1;
    c->len = 0;
    return ok;
}

static bool copy_begin(copy_t *c, PGconn *conn, const char *sql)
{
    *c = (copy_t){.conn = conn, .row_start = true};
    PGresult *r = PQexec(conn, sql);
    bool ok = PQresultStatus(r) == PGRES_COPY_IN;
    if (!ok)
        fprintf(stderr, "crmd seed: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

/* Sends the rest and ends the COPY; false (reason printed) when the server refused rows. */
static bool copy_finish(copy_t *c, const char *table)
{
    bool ok = true;
    if (c->len && PQputCopyData(c->conn, c->p, (int)c->len) != 1)
        ok = false;
    if (PQputCopyEnd(c->conn, ok ? NULL : "client error") != 1)
        ok = false;
    PGresult *r;
    while ((r = PQgetResult(c->conn))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "crmd seed: loading %s: %s", table, PQresultErrorMessage(r));
            ok = false;
        }
        PQclear(r);
    }
    free(c->p);
    c->p = NULL;
    return ok;
}

/* ---- the plan: how many rows of each kind each organization gets, and their ids ---- */

typedef struct {
    int64_t id;
    int64_t users_first, users_n, stages_first;
    int64_t companies_first, companies_n, contacts_first, contacts_n;
    int64_t deals_first, deals_n, activities_n, tasks_first, tasks_n;
} org_plan_t;

static int64_t scaled(double base, double scale)
{
    return llround(base * scale);
}

/* Organization k's share of total, at least min. */
static int64_t share_of(int64_t total, int k, int64_t min)
{
    int64_t n = 0, given = 0;
    for (int i = 0; i <= k; i++) {
        n = i == NORGS - 1 ? total - given : total * org_defs[i].share / 100;
        given += n;
    }
    return n > min ? n : min;
}

static void plan_orgs(double scale, org_plan_t plan[NORGS])
{
    int64_t users = scaled(20, scale), companies = scaled(10000, scale), contacts = scaled(40000, scale);
    int64_t deals = scaled(20000, scale), acts = scaled(500000, scale), tasks = scaled(40000, scale);
    int64_t next[6] = {1, 1, 1, 1, 1, 1};
    for (int k = 0; k < NORGS; k++) {
        org_plan_t *p = &plan[k];
        p->id = k + 1;
        p->users_n = share_of(users, k, 2);
        p->companies_n = share_of(companies, k, 1);
        p->contacts_n = share_of(contacts, k, 1);
        p->deals_n = share_of(deals, k, 1);
        p->activities_n = share_of(acts, k, 1);
        p->tasks_n = share_of(tasks, k, 1);
        p->users_first = next[0], next[0] += p->users_n;
        p->stages_first = next[1], next[1] += NSTAGES;
        p->companies_first = next[2], next[2] += p->companies_n;
        p->contacts_first = next[3], next[3] += p->contacts_n;
        p->deals_first = next[4], next[4] += p->deals_n;
        p->tasks_first = next[5], next[5] += p->tasks_n;
    }
}

void seed_counts(double scale, seed_counts_t *out)
{
    org_plan_t plan[NORGS];
    plan_orgs(scale, plan);
    *out = (seed_counts_t){.organizations = NORGS, .stages = NORGS * NSTAGES, .api_keys = NORGS * 2};
    for (int k = 0; k < NORGS; k++) {
        out->users += plan[k].users_n;
        out->companies += plan[k].companies_n;
        out->contacts += plan[k].contacts_n;
        out->deals += plan[k].deals_n;
        out->activities += plan[k].activities_n;
        out->tasks += plan[k].tasks_n;
    }
}

/* ---- generation state shared between tables ---- */

typedef struct {
    int64_t created;
} company_t;

typedef struct {
    int64_t company, created;
    unsigned char first, last;
} contact_t;

typedef struct {
    int64_t company, contact, created;
    unsigned char product;
} deal_t;

typedef struct {
    PGconn *conn;
    org_plan_t plan[NORGS];
    int64_t now;          /* the seed date, UTC midnight: rows are spread over the 24 months before it */
    int64_t start;        /* now - 730 days */
    company_t *companies; /* by id - 1 */
    contact_t *contacts;
    deal_t *deals;
} seed_t;

/* Company names are prefix noun suffix; local index i of an organization maps to a distinct
 * combination through a multiplicative permutation, so names and domains never repeat within an
 * organization (past every combination, a round number is appended). */
#define COMBOS                                                                                               \
    ((uint64_t)ARRAY_LEN(company_prefixes) * ARRAY_LEN(company_nouns) * ARRAY_LEN(company_suffixes))
#define COMBO_STEP 7919 /* prime, coprime with COMBOS */

typedef struct {
    unsigned prefix, noun, suffix, round;
} company_name_t;

static company_name_t company_name_of(const seed_t *s, int64_t id)
{
    int64_t local = id;
    for (int k = 0; k < NORGS; k++) {
        if (id >= s->plan[k].companies_first && id < s->plan[k].companies_first + s->plan[k].companies_n) {
            local = id - s->plan[k].companies_first;
            break;
        }
    }
    uint64_t j = ((uint64_t)local % COMBOS) * COMBO_STEP % COMBOS;
    return (company_name_t){
        .prefix = (unsigned)(j % ARRAY_LEN(company_prefixes)),
        .noun = (unsigned)(j / ARRAY_LEN(company_prefixes) % ARRAY_LEN(company_nouns)),
        .suffix = (unsigned)(j / ARRAY_LEN(company_prefixes) / ARRAY_LEN(company_nouns)),
        .round = (unsigned)((uint64_t)local / COMBOS),
    };
}

/* "Blue River" (the short name used in deal names and subjects). */
static void company_short(const seed_t *s, int64_t id, char *buf, size_t n)
{
    company_name_t c = company_name_of(s, id);
    snprintf(buf, n, "%s %s", company_prefixes[c.prefix], company_nouns[c.noun]);
}

static void company_full(const seed_t *s, int64_t id, char *buf, size_t n)
{
    company_name_t c = company_name_of(s, id);
    if (c.round)
        snprintf(buf, n, "%s %s %s %u", company_prefixes[c.prefix], company_nouns[c.noun],
                 company_suffixes[c.suffix], c.round + 1);
    else
        snprintf(buf, n, "%s %s %s", company_prefixes[c.prefix], company_nouns[c.noun],
                 company_suffixes[c.suffix]);
}

static void lower_into(char *dst, const char *src)
{
    while (*src) {
        char ch = *src++;
        *dst++ = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    *dst = '\0';
}

/* "blueriverlabs.io": the TLD is a function of the id, so it can be recomputed for emails. */
static void company_domain(const seed_t *s, int64_t id, char *buf, size_t n)
{
    company_name_t c = company_name_of(s, id);
    char raw[96], low[96];
    if (c.round)
        snprintf(raw, sizeof(raw), "%s%s%s%u", company_prefixes[c.prefix], company_nouns[c.noun],
                 company_suffixes[c.suffix], c.round + 1);
    else
        snprintf(raw, sizeof(raw), "%s%s%s", company_prefixes[c.prefix], company_nouns[c.noun],
                 company_suffixes[c.suffix]);
    lower_into(low, raw);
    snprintf(buf, n, "%s%s", low, tlds[(uint64_t)id * 2654435761u % ARRAY_LEN(tlds)]);
}

static int64_t pick_user(rng_t *r, const org_plan_t *p)
{
    return p->users_first + (int64_t)rng_below(r, (uint64_t)p->users_n);
}

/* ---- one generator per table ---- */

static bool gen_organizations(seed_t *s)
{
    copy_t c;
    if (!copy_begin(&c, s->conn, "COPY organizations (id, name, tier, created_at) FROM STDIN"))
        return false;
    bool ok = true;
    for (int k = 0; k < NORGS && ok; k++) {
        copy_i64(&c, s->plan[k].id);
        copy_str(&c, org_defs[k].name);
        copy_str(&c, org_defs[k].tier);
        copy_ts(&c, s->start - 400 * DAY);
        ok = copy_end_row(&c);
    }
    return copy_finish(&c, "organizations") && ok;
}

/* Each organization's first user is an admin and its second a member (the demo keys' owners);
 * about one in five of the others is an admin. */
static bool gen_users(seed_t *s)
{
    rng_t r = {0x75736572};
    copy_t c;
    if (!copy_begin(&c, s->conn, "COPY users (id, org_id, name, email, role, created_at) FROM STDIN"))
        return false;
    bool ok = true;
    for (int k = 0; k < NORGS; k++) {
        const org_plan_t *p = &s->plan[k];
        for (int64_t i = 0; i < p->users_n && ok; i++) {
            uint64_t pair =
                ((uint64_t)i * 613 + (uint64_t)k * 97) % (ARRAY_LEN(first_names) * ARRAY_LEN(last_names));
            const char *fn = first_names[pair % ARRAY_LEN(first_names)];
            const char *ln = last_names[pair / ARRAY_LEN(first_names)];
            char name[128], email[192], local[128];
            snprintf(name, sizeof(name), "%s %s", fn, ln);
            snprintf(local, sizeof(local), "%s.%s", fn, ln);
            lower_into(email, local);
            if (i >= (int64_t)(ARRAY_LEN(first_names) * ARRAY_LEN(last_names)))
                snprintf(email + strlen(email), sizeof(email) - strlen(email), "%lld", (long long)i);
            snprintf(email + strlen(email), sizeof(email) - strlen(email), "@%s", org_defs[k].mail_domain);
            bool admin = i == 0 || (i > 1 && rng_pct(&r, 20));
            copy_i64(&c, p->users_first + i);
            copy_i64(&c, p->id);
            copy_str(&c, name);
            copy_str(&c, email);
            copy_str(&c, admin ? "admin" : "member");
            copy_ts(&c, s->start - 365 * DAY + rng_range(&r, 0, 300 * DAY));
            ok = copy_end_row(&c);
        }
    }
    return copy_finish(&c, "users") && ok;
}

static bool gen_stages(seed_t *s)
{
    copy_t c;
    if (!copy_begin(
            &c, s->conn,
            "COPY stages (id, org_id, name, color, position, probability, kind, created_at) FROM STDIN"))
        return false;
    bool ok = true;
    for (int k = 0; k < NORGS; k++) {
        for (int64_t i = 0; i < NSTAGES && ok; i++) {
            copy_i64(&c, s->plan[k].stages_first + i);
            copy_i64(&c, s->plan[k].id);
            copy_str(&c, stage_defs[i].name);
            copy_str(&c, stage_defs[i].color);
            copy_i64(&c, i);
            copy_i64(&c, stage_defs[i].probability);
            copy_str(&c, stage_defs[i].kind);
            copy_ts(&c, s->start - 400 * DAY);
            ok = copy_end_row(&c);
        }
    }
    return copy_finish(&c, "stages") && ok;
}

/* A time in [from, now): the row was last touched some time after it was created. */
static int64_t later(rng_t *r, int64_t from, int64_t now)
{
    return rng_pct(r, 50) ? from : rng_range(r, from, now > from ? now : from + 1);
}

static bool gen_companies(seed_t *s)
{
    rng_t r = {0x636f6d70};
    copy_t c;
    if (!copy_begin(&c, s->conn,
                    "COPY companies (id, org_id, owner_id, name, domain, industry, size, website, created_at,"
                    " updated_at) FROM STDIN"))
        return false;
    bool ok = true;
    for (int k = 0; k < NORGS; k++) {
        const org_plan_t *p = &s->plan[k];
        for (int64_t i = 0; i < p->companies_n && ok; i++) {
            int64_t id = p->companies_first + i;
            char name[160], domain[160], site[192];
            company_full(s, id, name, sizeof(name));
            company_domain(s, id, domain, sizeof(domain));
            company_name_t cn = company_name_of(s, id);
            int64_t created = s->start - 120 * DAY + rng_range(&r, 0, 700 * DAY);
            s->companies[id - 1].created = created;
            copy_i64(&c, id);
            copy_i64(&c, p->id);
            copy_i64(&c, pick_user(&r, p));
            copy_str(&c, name);
            copy_str(&c, domain);
            copy_str(&c, rng_pct(&r, 70) ? industries[suffix_industry[cn.suffix]] : PICK(&r, industries));
            copy_str(&c, sizes[rng_weighted(&r, size_weights, ARRAY_LEN(size_weights))]);
            if (rng_pct(&r, 90)) {
                snprintf(site, sizeof(site), "https://www.%s", domain);
                copy_str(&c, site);
            } else {
                copy_null(&c);
            }
            copy_ts(&c, created);
            copy_ts(&c, later(&r, created, s->now));
            ok = copy_end_row(&c);
        }
    }
    return copy_finish(&c, "companies") && ok;
}

/* Contacts belong to a company (95%, skewed toward some companies) and are named by a per
 * company counter through a permutation of first x last names, so first.last@domain is unique;
 * contacts without a company use a free mail domain and their id. */
static bool gen_contacts(seed_t *s)
{
    rng_t r = {0x636f6e74};
    const uint64_t npairs = ARRAY_LEN(first_names) * ARRAY_LEN(last_names);
    int64_t ncompanies = s->plan[NORGS - 1].companies_first + s->plan[NORGS - 1].companies_n - 1;
    uint32_t *per_company = xcalloc((size_t)ncompanies, sizeof(uint32_t));
    copy_t c;
    if (!copy_begin(
            &c, s->conn,
            "COPY contacts (id, org_id, company_id, owner_id, first_name, last_name, email, phone, title,"
            " created_at, updated_at) FROM STDIN")) {
        free(per_company);
        return false;
    }
    bool ok = true;
    for (int k = 0; k < NORGS; k++) {
        const org_plan_t *p = &s->plan[k];
        for (int64_t i = 0; i < p->contacts_n && ok; i++) {
            int64_t id = p->contacts_first + i, company = 0, created;
            uint64_t pair;
            char email[256], local[128], domain[160];
            bool has_email = rng_pct(&r, 97);
            if (rng_pct(&r, 95)) {
                company = p->companies_first + (int64_t)rng_skewed(&r, (uint64_t)p->companies_n);
                uint32_t nth = per_company[company - 1]++;
                pair = ((uint64_t)company * 2654435761u + (uint64_t)nth * 1237) % npairs;
                company_domain(s, company, domain, sizeof(domain));
                snprintf(local, sizeof(local), "%s.%s", first_names[pair % ARRAY_LEN(first_names)],
                         last_names[pair / ARRAY_LEN(first_names)]);
                lower_into(email, local);
                if (nth >= npairs)
                    snprintf(email + strlen(email), sizeof(email) - strlen(email), "%u",
                             nth / (uint32_t)npairs);
                snprintf(email + strlen(email), sizeof(email) - strlen(email), "@%s", domain);
                int64_t from = s->companies[company - 1].created;
                created = from + rng_range(&r, 0, MAX(s->now - from, DAY));
            } else {
                pair = rng_below(&r, npairs);
                snprintf(local, sizeof(local), "%s.%s%lld@%s", first_names[pair % ARRAY_LEN(first_names)],
                         last_names[pair / ARRAY_LEN(first_names)], (long long)id, PICK(&r, free_mail));
                lower_into(email, local);
                created = s->start + rng_range(&r, 0, 720 * DAY);
            }
            contact_t *ct = &s->contacts[id - 1];
            *ct = (contact_t){.company = company,
                              .created = created,
                              .first = (unsigned char)(pair % ARRAY_LEN(first_names)),
                              .last = (unsigned char)(pair / ARRAY_LEN(first_names))};
            copy_i64(&c, id);
            copy_i64(&c, p->id);
            copy_ref(&c, company);
            copy_i64(&c, pick_user(&r, p));
            copy_str(&c, first_names[ct->first]);
            copy_str(&c, last_names[ct->last]);
            if (has_email)
                copy_str(&c, email);
            else
                copy_null(&c);
            if (rng_pct(&r, 90)) {
                char phone[32];
                snprintf(phone, sizeof(phone), "+1-555-%03u-%04u", (unsigned)rng_below(&r, 1000),
                         (unsigned)rng_below(&r, 10000));
                copy_str(&c, phone);
            } else {
                copy_null(&c);
            }
            if (rng_pct(&r, 90))
                copy_str(&c, PICK(&r, titles));
            else
                copy_null(&c);
            copy_ts(&c, created);
            copy_ts(&c, later(&r, created, s->now));
            ok = copy_end_row(&c);
        }
    }
    free(per_company);
    return copy_finish(&c, "contacts") && ok;
}

/* Deals mostly come from a contact (and so its company); status follows the stage's kind and
 * closed deals have closed_at; values are log-uniform between 1k and 250k, in hundreds. */
static bool gen_deals(seed_t *s)
{
    rng_t r = {0x6465616c};
    unsigned weights[ARRAY_LEN(stage_defs)];
    for (size_t i = 0; i < ARRAY_LEN(stage_defs); i++)
        weights[i] = stage_defs[i].weight;
    copy_t c;
    if (!copy_begin(
            &c, s->conn,
            "COPY deals (id, org_id, owner_id, company_id, contact_id, name, value, stage_id, probability,"
            " expected_close_date, status, created_at, updated_at, closed_at) FROM STDIN"))
        return false;
    bool ok = true;
    for (int k = 0; k < NORGS; k++) {
        const org_plan_t *p = &s->plan[k];
        for (int64_t i = 0; i < p->deals_n && ok; i++) {
            int64_t id = p->deals_first + i, company = 0, contact = 0;
            if (rng_pct(&r, 80)) {
                contact = p->contacts_first + (int64_t)rng_below(&r, (uint64_t)p->contacts_n);
                company = s->contacts[contact - 1].company;
                if (!company || rng_pct(&r, 10))
                    contact = 0;
            }
            if (!company)
                company = p->companies_first + (int64_t)rng_skewed(&r, (uint64_t)p->companies_n);
            size_t st = rng_weighted(&r, weights, ARRAY_LEN(weights));
            const stage_def_t *sd = &stage_defs[st];
            unsigned char product = (unsigned char)rng_below(&r, ARRAY_LEN(products));
            bool open = strcmp(sd->kind, "open") == 0;
            /* Open deals are from the last year and mostly close ahead; closed ones span two years. */
            int64_t from = MAX(s->companies[company - 1].created, open ? s->now - 365 * DAY : s->start);
            int64_t created = rng_range(&r, from, MAX(s->now, from + DAY));
            int64_t closed = 0, close_date;
            double lv = log(1000.0) + (double)rng_below(&r, 1000000) / 1e6 * (log(250000.0) - log(1000.0));
            int64_t cents = (int64_t)llround(exp(lv) / 100.0) * 10000;
            if (!open) {
                closed = created + rng_range(&r, 3 * DAY, 120 * DAY);
                if (closed > s->now - HOUR)
                    closed = MAX(created + HOUR, s->now - HOUR);
                close_date = closed;
            } else {
                close_date = MAX(created + 7 * DAY, s->now + rng_range(&r, -30, 150) * DAY);
            }
            s->deals[id - 1] =
                (deal_t){.company = company, .contact = contact, .created = created, .product = product};
            char name[256], cname[128];
            company_short(s, company, cname, sizeof(cname));
            snprintf(name, sizeof(name), "%s - %s", cname, products[product]);
            copy_i64(&c, id);
            copy_i64(&c, p->id);
            copy_i64(&c, pick_user(&r, p));
            copy_i64(&c, company);
            copy_ref(&c, contact);
            copy_str(&c, name);
            copy_money(&c, cents);
            copy_i64(&c, p->stages_first + (int64_t)st);
            copy_i64(&c, sd->probability);
            copy_date(&c, close_date);
            copy_str(&c, sd->kind);
            copy_ts(&c, created);
            copy_ts(&c, closed ? closed : later(&r, created, s->now));
            if (closed)
                copy_ts(&c, closed);
            else
                copy_null(&c);
            ok = copy_end_row(&c);
        }
    }
    return copy_finish(&c, "deals") && ok;
}

/* One activity of organization p at a random time of day [day, day + DAY): linked to a deal
 * (45%, with its company and contact), a contact (35%) or a company (20%). */
static bool gen_activity(seed_t *s, rng_t *r, copy_t *c, const org_plan_t *p, int64_t id, int64_t day)
{
    int64_t company = 0, contact = 0, deal = 0;
    unsigned link = (unsigned)rng_below(r, 100);
    if (link < 45) {
        deal = p->deals_first + (int64_t)rng_below(r, (uint64_t)p->deals_n);
        company = s->deals[deal - 1].company;
        contact = s->deals[deal - 1].contact;
    } else if (link < 80) {
        contact = p->contacts_first + (int64_t)rng_below(r, (uint64_t)p->contacts_n);
        company = s->contacts[contact - 1].company;
    } else {
        company = p->companies_first + (int64_t)rng_skewed(r, (uint64_t)p->companies_n);
    }
    size_t type = rng_weighted(r, activity_type_weights, ARRAY_LEN(activity_type_weights));
    const char *const *tpl = subjects[type][rng_below(r, 4)];
    char who[128], subject[320], body[1024];
    if (contact)
        snprintf(who, sizeof(who), "%s", first_names[s->contacts[contact - 1].first]);
    else
        company_short(s, company, who, sizeof(who));
    snprintf(subject, sizeof(subject), "%s%s%s", tpl[0], who, tpl[1]);
    size_t blen = 0, nsent = 1 + rng_below(r, 3);
    body[0] = '\0';
    for (size_t j = 0; j < nsent; j++)
        blen += (size_t)snprintf(body + blen, sizeof(body) - blen, "%s%s", j ? " " : "", PICK(r, sentences));
    int64_t occurred = day + rng_range(r, 0, DAY);
    copy_i64(c, id);
    copy_i64(c, p->id);
    copy_i64(c, pick_user(r, p));
    copy_ref(c, company);
    copy_ref(c, contact);
    copy_ref(c, deal);
    copy_str(c, activity_types[type]);
    copy_str(c, subject);
    if (rng_pct(r, 90))
        copy_str(c, body);
    else
        copy_null(c);
    copy_ts(c, occurred);
    copy_ts(c, occurred + rng_range(r, 0, 2 * HOUR));
    return copy_end_row(c);
}

/* Activities are spread evenly over the 730 days before the seed date and the day itself, and
 * generated day by day: ids grow with time and each day's rows go to one partition, which
 * keeps index inserts local (measurably faster than random order). */
static bool gen_activities(seed_t *s)
{
    rng_t r = {0x61637476};
    const int64_t ndays = (s->now + DAY - s->start) / DAY;
    copy_t c;
    if (!copy_begin(
            &c, s->conn,
            "COPY activities (id, org_id, owner_id, company_id, contact_id, deal_id, type, subject, body,"
            " occurred_at, created_at) FROM STDIN"))
        return false;
    bool ok = true;
    int64_t id = 1;
    for (int64_t d = 0; d < ndays && ok; d++) {
        for (int k = 0; k < NORGS && ok; k++) {
            const org_plan_t *p = &s->plan[k];
            int64_t n = p->activities_n * (d + 1) / ndays - p->activities_n * d / ndays;
            for (int64_t i = 0; i < n && ok; i++)
                ok = gen_activity(s, &r, &c, p, id++, s->start + d * DAY);
        }
    }
    return copy_finish(&c, "activities") && ok;
}

/* Tasks are due from 180 days before to 60 days after the seed date; most past ones are done. */
static bool gen_tasks(seed_t *s)
{
    rng_t r = {0x7461736b};
    copy_t c;
    if (!copy_begin(&c, s->conn,
                    "COPY tasks (id, org_id, owner_id, company_id, deal_id, title, priority, status, due_at,"
                    " created_at, completed_at) FROM STDIN"))
        return false;
    bool ok = true;
    for (int k = 0; k < NORGS; k++) {
        const org_plan_t *p = &s->plan[k];
        for (int64_t i = 0; i < p->tasks_n && ok; i++) {
            int64_t company = 0, deal = 0;
            unsigned link = (unsigned)rng_below(&r, 100);
            if (link < 50) {
                deal = p->deals_first + (int64_t)rng_below(&r, (uint64_t)p->deals_n);
                company = s->deals[deal - 1].company;
            } else if (link < 80) {
                company = p->companies_first + (int64_t)rng_skewed(&r, (uint64_t)p->companies_n);
            }
            const char *const *tpl = task_titles[rng_below(&r, ARRAY_LEN(task_titles))];
            char what[128], title[256];
            if (company)
                company_short(s, company, what, sizeof(what));
            else
                snprintf(what, sizeof(what), "%s", PICK(&r, products));
            snprintf(title, sizeof(title), "%s%s%s", tpl[0], what, tpl[1]);
            /* due on a working hour, 09:00-17:00 UTC */
            int64_t due = s->now - 180 * DAY + rng_range(&r, 0, 240) * DAY + rng_range(&r, 9, 17) * HOUR;
            int64_t created = MIN(due - rng_range(&r, DAY, 30 * DAY), s->now - rng_range(&r, 0, 7 * DAY));
            bool done = rng_pct(&r, due < s->now ? 80 : 10);
            copy_i64(&c, p->tasks_first + i);
            copy_i64(&c, p->id);
            copy_i64(&c, pick_user(&r, p));
            copy_ref(&c, company);
            copy_ref(&c, deal);
            copy_str(&c, title);
            copy_str(&c, priorities[rng_weighted(&r, priority_weights, ARRAY_LEN(priority_weights))]);
            copy_str(&c, done ? "done" : "open");
            copy_ts(&c, due);
            copy_ts(&c, created);
            if (done)
                copy_ts(&c, created + rng_range(&r, 0, MAX(MIN(due, s->now) - created, HOUR)));
            else
                copy_null(&c);
            ok = copy_end_row(&c);
        }
    }
    return copy_finish(&c, "tasks") && ok;
}

/* ---- running it ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The seed date as Unix seconds of a UTC midnight: $CRMD_SEED_NOW (YYYY-MM-DD) or today. */
static int seed_date(int64_t *out)
{
    const char *env = getenv("CRMD_SEED_NOW");
    if (env && *env) {
        int y;
        unsigned m, d;
        char extra;
        if (sscanf(env, "%d-%u-%u%c", &y, &m, &d, &extra) != 3 || y < 1970 || y > 9999 || m < 1 || m > 12 ||
            d < 1 || d > 31) {
            fprintf(stderr, "crmd seed: CRMD_SEED_NOW must be a date YYYY-MM-DD, not \"%s\"\n", env);
            return -1;
        }
        *out = ts_days_from_civil(y, m, d) * DAY;
        return 0;
    }
    *out = (int64_t)time(NULL) / DAY * DAY;
    return 0;
}

static const char *const seeded_tables[] = {"organizations", "users",           "api_keys", "stages",
                                            "companies",     "contacts",        "deals",    "activities",
                                            "tasks",         "idempotency_keys"};

/* Wipes the tenant tables and loads every generated table; inside the caller's transaction. */
static bool load_all(seed_t *s)
{
    static const struct {
        const char *table;
        bool (*gen)(seed_t *);
    } steps[] = {
        {"organizations", gen_organizations}, {"users", gen_users},       {"stages", gen_stages},
        {"companies", gen_companies},         {"contacts", gen_contacts}, {"deals", gen_deals},
        {"activities", gen_activities},       {"tasks", gen_tasks},
    };
    char list[512] = "";
    for (size_t i = 0; i < ARRAY_LEN(seeded_tables); i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", seeded_tables[i]);
    if (!cli_exec(s->conn, "seed", "TRUNCATE %s RESTART IDENTITY CASCADE", list))
        return false;
    /* Partitions for every month the activities span, whenever the migration ran. */
    char from[16], to[16];
    int64_t y;
    unsigned m, d;
    ts_civil_from_days((s->start - 31 * DAY) / DAY, &y, &m, &d);
    snprintf(from, sizeof(from), "%04d-%02u-%02u", (int)y, m, d);
    ts_civil_from_days((s->now + 92 * DAY) / DAY, &y, &m, &d);
    snprintf(to, sizeof(to), "%04d-%02u-%02u", (int)y, m, d);
    if (!cli_exec(s->conn, "seed", "SELECT crmd_ensure_activity_partitions('%s', '%s')", from, to))
        return false;
    for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
        double t0 = now_s();
        if (!steps[i].gen(s))
            return false;
        printf("  %-14s %8.2f s\n", steps[i].table, now_s() - t0);
        fflush(stdout);
    }
    for (size_t i = 0; i < ARRAY_LEN(seeded_tables); i++) {
        if (strcmp(seeded_tables[i], "idempotency_keys") == 0)
            continue;
        if (!cli_exec(
                s->conn, "seed",
                "SELECT setval(pg_get_serial_sequence('%s', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM %s),"
                " false)",
                seeded_tables[i], seeded_tables[i]))
            return false;
    }
    return true;
}

/* Writes the keys as JSON to path (through a temporary file, mode 0600). */
static bool write_keys_json(const char *path, const api_key_gen_t keys[NORGS * 2])
{
    char tmp[4096], dir[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        fprintf(stderr, "crmd seed: keys path too long\n");
        return false;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
            fprintf(stderr, "crmd seed: cannot create %s: %s\n", dir, strerror(errno));
            return false;
        }
    }
    mode_t old = umask(077);
    FILE *f = fopen(tmp, "w");
    umask(old);
    if (!f) {
        fprintf(stderr, "crmd seed: cannot write %s: %s\n", tmp, strerror(errno));
        return false;
    }
    fputs("[\n", f);
    for (int i = 0; i < NORGS * 2; i++)
        fprintf(f, "  {\"org_id\": %d, \"tier\": \"%s\", \"role\": \"%s\", \"key\": \"%s\"}%s\n", i / 2 + 1,
                org_defs[i / 2].tier, i % 2 ? "member" : "admin", keys[i].key, i + 1 < NORGS * 2 ? "," : "");
    fputs("]\n", f);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "crmd seed: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

int seed_run(const char *conninfo, double scale, const char *keys_out_path)
{
    char err[512], keys_path[4096];
    if (!(scale > 0 && scale <= 1000)) {
        fprintf(stderr, "crmd seed: --scale must be > 0 and <= 1000\n");
        return 1;
    }
    if (!keys_out_path)
        keys_out_path = getenv("CRMD_KEYS_OUT");
    if (!keys_out_path || !*keys_out_path) {
        if (db_repo_path("var/demo-keys.json", keys_path, sizeof(keys_path)) < 0) {
            fprintf(stderr, "crmd seed: cannot locate the repository (set CRMD_KEYS_OUT)\n");
            return 1;
        }
        keys_out_path = keys_path;
    }
    if (db_schema_check(conninfo, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "crmd seed: %s\n", err);
        return 1;
    }

    seed_t s = {0};
    if (seed_date(&s.now) < 0)
        return 1;
    s.start = s.now - 730 * DAY;
    plan_orgs(scale, s.plan);
    seed_counts_t n;
    seed_counts(scale, &n);
    s.companies = xcalloc((size_t)n.companies, sizeof(company_t));
    s.contacts = xcalloc((size_t)n.contacts, sizeof(contact_t));
    s.deals = xcalloc((size_t)n.deals, sizeof(deal_t));
    api_key_gen_t keys[NORGS * 2];
    int rc = 1;
    double t0 = now_s();

    if (!(s.conn = cli_connect(conninfo, "seed")))
        goto out;
    if (!cli_exec(s.conn, "seed", "SET TimeZone = 'UTC'") || !cli_exec(s.conn, "seed", "BEGIN"))
        goto out;
    printf("seeding scale %g:\n", scale);
    if (!load_all(&s))
        goto rollback;
    for (int k = 0; k < NORGS; k++) {
        for (int role = 0; role < 2; role++) {
            api_key_gen_t *key = &keys[k * 2 + role];
            key_make(key);
            if (!key_insert(s.conn, s.plan[k].id, s.plan[k].users_first + role, key, NULL, 0))
                goto rollback;
        }
    }
    if (!cli_exec(s.conn, "seed", "COMMIT"))
        goto out;
    double t_load = now_s() - t0;
    if (!cli_exec(
            s.conn, "seed",
            "ANALYZE organizations, users, api_keys, stages, companies, contacts, deals, activities, tasks"))
        goto out;
    printf("seeded %lld organizations, %lld users, %lld stages, %lld companies, %lld contacts, %lld deals,"
           " %lld activities, %lld tasks in %.1f s (analyze %.1f s)\n",
           (long long)n.organizations, (long long)n.users, (long long)n.stages, (long long)n.companies,
           (long long)n.contacts, (long long)n.deals, (long long)n.activities, (long long)n.tasks, t_load,
           now_s() - t0 - t_load);
    printf("demo API keys (also in %s):\n", keys_out_path);
    for (int i = 0; i < NORGS * 2; i++)
        printf("  org %d %-13s %-6s %s\n", i / 2 + 1, org_defs[i / 2].tier, i % 2 ? "member" : "admin",
               keys[i].key);
    rc = write_keys_json(keys_out_path, keys) ? 0 : 1;
    goto out;
rollback:
    PQclear(PQexec(s.conn, "ROLLBACK"));
out:
    if (s.conn)
        PQfinish(s.conn);
    sec_wipe(keys, sizeof(keys));
    free(s.companies);
    free(s.contacts);
    free(s.deals);
    return rc;
}

int cmd_seed(int argc, char **argv)
{
    const char *scale_s = cli_take_flag(&argc, argv, "--scale");
    const char *keys_out = cli_take_flag(&argc, argv, "--keys-out");
    config_parse(&g_config, argc, argv, "seed");
    double scale = scale_s ? cli_parse_double(scale_s, "--scale", 0.0001, 100) : 1.0;
    char keys_path[4096];
    if (!keys_out) {
        if (db_repo_path("var/demo-keys.json", keys_path, sizeof(keys_path)) != 0)
            snprintf(keys_path, sizeof(keys_path), "demo-keys.json");
        keys_out = keys_path;
    }
    return seed_run(cli_database_url(), scale, keys_out);
}

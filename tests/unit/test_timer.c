#include "core/timer.h"
#include "test.h"

#include <stdint.h>

/* An owner struct embedding its timer, as connections will. */
typedef struct probe {
    int id;
    timer_entry_t timer;
    uint64_t fired_at; /* the test clock when the callback ran; 0 = never */
    int fired;
} probe_t;

static uint64_t clock_now; /* the driven clock the callbacks read */
static int order[64];
static int norder;

static void on_probe(timer_entry_t *e)
{
    probe_t *p = timer_owner(e, probe_t, timer);
    p->fired++;
    p->fired_at = clock_now;
    if (norder < (int)ARRAY_LEN(order))
        order[norder++] = p->id;
}

static void probes_init(probe_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        p[i].id = i;
        p[i].fired = 0;
        p[i].fired_at = 0;
        timer_init(&p[i].timer, on_probe);
    }
    norder = 0;
}

/* Runs the wheel at every millisecond from `from` to `to` inclusive; returns how many fired. */
static size_t run_each_ms(timer_wheel_t *w, uint64_t from, uint64_t to)
{
    size_t n = 0;
    for (clock_now = from; clock_now <= to; clock_now++)
        n += timer_run(w, clock_now);
    return n;
}

/* Advances the clock only as far as timer_next_ms says, until `until`; returns fired count. */
static size_t run_by_next(timer_wheel_t *w, uint64_t until, int *wakeups)
{
    size_t n = 0;
    /* bounded, so a wheel that stops making progress fails the test instead of hanging it */
    for (int turns = 0;; turns++) {
        if (turns == 2000000) {
            CHECK(!"timer_next_ms/timer_run made no progress");
            break;
        }
        int64_t wait = timer_next_ms(w, clock_now);
        if (wait < 0 || clock_now + (uint64_t)wait > until)
            break;
        clock_now += (uint64_t)wait;
        n += timer_run(w, clock_now);
        if (wakeups)
            (*wakeups)++;
    }
    return n;
}

TEST(empty_wheel)
{
    timer_wheel_t w;
    timer_wheel_init(&w, 1000, 10);
    CHECK_EQ_INT(timer_next_ms(&w, 1000), -1);
    CHECK_EQ_INT(timer_run(&w, 5000), 0);
    CHECK_EQ_INT(timer_count(&w), 0);
    probe_t p;
    probes_init(&p, 1);
    CHECK(!timer_armed(&p.timer));
    timer_del(&p.timer); /* not armed: no-op */
    CHECK(!timer_armed(&p.timer));
}

TEST(fires_in_deadline_order)
{
    static const uint64_t due[] = {1250, 1003, 1999, 1004, 1100, 1001, 1105, 1500, 1003, 1350};
    timer_wheel_t w;
    probe_t p[ARRAY_LEN(due)];
    timer_wheel_init(&w, 1000, 10);
    probes_init(p, ARRAY_LEN(due));
    for (size_t i = 0; i < ARRAY_LEN(due); i++)
        timer_add(&w, &p[i].timer, due[i]);
    CHECK_EQ_INT(timer_count(&w), ARRAY_LEN(due));
    /* one big step: everything fires in a single call, still in deadline order */
    clock_now = 3000;
    CHECK_EQ_INT(timer_run(&w, clock_now), ARRAY_LEN(due));
    CHECK_EQ_INT(norder, ARRAY_LEN(due));
    for (int i = 1; i < norder; i++)
        CHECK(due[order[i - 1]] <= due[order[i]]);
    CHECK_EQ_INT(timer_count(&w), 0);
}

TEST(fires_at_deadline_not_before)
{
    static const uint64_t due[] = {1000, 1001, 1009, 1010, 1011, 1019, 1020, 1234, 3599, 3600};
    timer_wheel_t w;
    probe_t p[ARRAY_LEN(due)];
    timer_wheel_init(&w, 1000, 10);
    probes_init(p, ARRAY_LEN(due));
    for (size_t i = 0; i < ARRAY_LEN(due); i++)
        timer_add(&w, &p[i].timer, due[i]);
    CHECK_EQ_INT(run_each_ms(&w, 1000, 4000), ARRAY_LEN(due));
    for (size_t i = 0; i < ARRAY_LEN(due); i++) {
        CHECK_EQ_INT(p[i].fired, 1);
        CHECK_EQ_INT(p[i].fired_at, due[i]);
    }
}

TEST(exact_deadline_one_call_each_side)
{
    timer_wheel_t w;
    probe_t p;
    timer_wheel_init(&w, 0, 10);
    probes_init(&p, 1);
    timer_add(&w, &p.timer, 105);
    CHECK(timer_armed(&p.timer));
    CHECK_EQ_INT(timer_run(&w, 104), 0);
    CHECK(timer_armed(&p.timer));
    CHECK_EQ_INT(timer_run(&w, 105), 1);
    CHECK(!timer_armed(&p.timer));
    CHECK_EQ_INT(timer_run(&w, 200), 0);
    CHECK_EQ_INT(p.fired, 1);
}

TEST(past_deadline_fires_on_next_run)
{
    timer_wheel_t w;
    probe_t p;
    timer_wheel_init(&w, 5000, 10);
    probes_init(&p, 1);
    timer_run(&w, 5000);
    timer_add(&w, &p.timer, 10); /* long past */
    CHECK_EQ_INT(timer_next_ms(&w, 5000), 0);
    CHECK_EQ_INT(timer_run(&w, 5000), 1);
}

TEST(rearm_moves_the_deadline)
{
    timer_wheel_t w;
    probe_t p;
    timer_wheel_init(&w, 0, 10);
    probes_init(&p, 1);
    timer_add(&w, &p.timer, 100);
    timer_add(&w, &p.timer, 5000); /* later */
    CHECK_EQ_INT(timer_count(&w), 1);
    CHECK_EQ_INT(run_each_ms(&w, 0, 4999), 0);
    timer_add(&w, &p.timer, 5003); /* a little later again, same slot */
    clock_now = 5000;
    CHECK_EQ_INT(timer_run(&w, 5000), 0);
    timer_add(&w, &p.timer, 5001);
    CHECK_EQ_INT(run_each_ms(&w, 5001, 6000), 1);
    CHECK_EQ_INT(p.fired_at, 5001);
    /* earlier than before */
    timer_add(&w, &p.timer, 90000);
    timer_add(&w, &p.timer, 6010);
    CHECK_EQ_INT(run_each_ms(&w, 6001, 100000), 1);
    CHECK_EQ_INT(p.fired, 2);
    CHECK_EQ_INT(p.fired_at, 6010);
}

TEST(delete_before_firing)
{
    timer_wheel_t w;
    probe_t p[3];
    timer_wheel_init(&w, 0, 10);
    probes_init(p, 3);
    timer_add(&w, &p[0].timer, 50);
    timer_add(&w, &p[1].timer, 50);
    timer_add(&w, &p[2].timer, 70000); /* upper level */
    timer_del(&p[1].timer);
    timer_del(&p[2].timer);
    CHECK(!timer_armed(&p[1].timer));
    CHECK_EQ_INT(timer_count(&w), 1);
    CHECK_EQ_INT(timer_next_ms(&w, 0), 50);
    CHECK_EQ_INT(run_each_ms(&w, 0, 100000), 1);
    CHECK_EQ_INT(p[0].fired, 1);
    CHECK_EQ_INT(p[1].fired + p[2].fired, 0);
    CHECK_EQ_INT(timer_next_ms(&w, 100000), -1);
}

/* Callbacks that act on other probes: victim deletes, spawn arms. */
static timer_wheel_t *cb_wheel;
static probe_t *cb_victims[4];
static probe_t *cb_spawn;
static uint64_t cb_spawn_at;

static void on_killer(timer_entry_t *e)
{
    on_probe(e);
    for (size_t i = 0; i < ARRAY_LEN(cb_victims); i++)
        if (cb_victims[i])
            timer_del(&cb_victims[i]->timer);
}

TEST(delete_from_callback)
{
    timer_wheel_t w;
    probe_t p[5];
    timer_wheel_init(&w, 0, 10);
    probes_init(p, 5);
    p[0].timer.cb = on_killer;
    timer_add(&w, &p[0].timer, 100);
    timer_add(&w, &p[1].timer, 101);  /* same slot, later: in the batch being fired */
    timer_add(&w, &p[2].timer, 100);  /* same deadline */
    timer_add(&w, &p[3].timer, 150);  /* later slot of the same run */
    timer_add(&w, &p[4].timer, 9000); /* far */
    cb_victims[0] = &p[1];
    cb_victims[1] = &p[3];
    cb_victims[2] = &p[4];
    cb_victims[3] = &p[0]; /* itself: already disarmed, a no-op */
    clock_now = 200;
    size_t n = timer_run(&w, 200);
    /* p[2] shares p[0]'s deadline: it may fire before p[0] kills anything */
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(p[0].fired, 1);
    CHECK_EQ_INT(p[2].fired, 1);
    CHECK_EQ_INT(p[1].fired + p[3].fired + p[4].fired, 0);
    CHECK_EQ_INT(timer_count(&w), 0);
    CHECK_EQ_INT(timer_next_ms(&w, 200), -1);
    memset(cb_victims, 0, sizeof(cb_victims));
}

static void on_spawner(timer_entry_t *e)
{
    on_probe(e);
    timer_add(cb_wheel, &cb_spawn->timer, cb_spawn_at);
}

TEST(callback_arms_new_timer)
{
    timer_wheel_t w;
    probe_t p[2];
    timer_wheel_init(&w, 0, 10);
    probes_init(p, 2);
    cb_wheel = &w;
    cb_spawn = &p[1];
    p[0].timer.cb = on_spawner;

    /* spawned within the range the same run still covers: fires in that run */
    cb_spawn_at = 180;
    timer_add(&w, &p[0].timer, 100);
    clock_now = 200;
    CHECK_EQ_INT(timer_run(&w, 200), 2);
    CHECK_EQ_INT(order[0], 0);
    CHECK_EQ_INT(order[1], 1);

    /* spawned in the future: fires at its own deadline */
    probes_init(p, 2);
    p[0].timer.cb = on_spawner;
    cb_spawn_at = 777;
    timer_add(&w, &p[0].timer, 300);
    CHECK_EQ_INT(run_each_ms(&w, 201, 1000), 2);
    CHECK_EQ_INT(p[1].fired_at, 777);

    /* spawned already due: waits for the next call instead of looping inside this one */
    probes_init(p, 2);
    p[0].timer.cb = on_spawner;
    cb_spawn_at = 0;
    timer_add(&w, &p[0].timer, 1500);
    clock_now = 1500;
    CHECK_EQ_INT(timer_run(&w, 1500), 1);
    CHECK_EQ_INT(timer_next_ms(&w, 1500), 0);
    CHECK_EQ_INT(timer_run(&w, 1500), 1);
    CHECK_EQ_INT(p[1].fired, 1);

    /* spawned already due in the middle of a multi-tick run: still fires within that run */
    probes_init(p, 2);
    p[0].timer.cb = on_spawner;
    cb_spawn_at = 0;
    timer_add(&w, &p[0].timer, 1600);
    clock_now = 1700;
    CHECK_EQ_INT(timer_run(&w, 1700), 2);
    CHECK_EQ_INT(timer_count(&w), 0);
}

static int periodic_left;

static void on_periodic(timer_entry_t *e)
{
    on_probe(e);
    if (--periodic_left > 0)
        timer_add(cb_wheel, e, e->expires + 250);
}

TEST(callback_rearms_itself)
{
    timer_wheel_t w;
    probe_t p;
    timer_wheel_init(&w, 0, 10);
    probes_init(&p, 1);
    cb_wheel = &w;
    periodic_left = 10;
    timer_init(&p.timer, on_periodic);
    timer_add(&w, &p.timer, 250);
    CHECK_EQ_INT(run_each_ms(&w, 0, 10000), 10);
    CHECK_EQ_INT(p.fired_at, 2500);
    CHECK(!timer_armed(&p.timer));

    /* one big jump: each re-arm lands ahead of the run and still fires within it */
    probes_init(&p, 1);
    timer_init(&p.timer, on_periodic);
    periodic_left = 5;
    timer_add(&w, &p.timer, 10250);
    clock_now = 20000;
    CHECK_EQ_INT(timer_run(&w, 20000), 5);
}

TEST(long_deadlines_hours)
{
    static const uint64_t after[] = {
        10,
        2559,
        2560,
        2561,
        655359,
        655360,
        3600000 + 7,
        2 * 3600000 + 1234,
        7 * 3600000 + 59999,
        47 * 3600000 + 3,
    };
    timer_wheel_t w;
    probe_t p[ARRAY_LEN(after)];
    uint64_t start = 123456789;
    timer_wheel_init(&w, start, 10);
    probes_init(p, ARRAY_LEN(after));
    for (size_t i = 0; i < ARRAY_LEN(after); i++)
        timer_add(&w, &p[i].timer, start + after[i]);

    /* coarse steps of 997 ms: each must fire on the first step at or past its deadline */
    clock_now = start;
    while (timer_count(&w) && clock_now < start + 48 * 3600000) {
        clock_now += 997;
        timer_run(&w, clock_now);
    }
    for (size_t i = 0; i < ARRAY_LEN(after); i++) {
        CHECK_EQ_INT(p[i].fired, 1);
        CHECK(p[i].fired_at >= start + after[i]);
        CHECK(p[i].fired_at < start + after[i] + 997);
    }

    /* the same deadlines, the clock moved only as timer_next_ms says: exact firing times */
    probes_init(p, ARRAY_LEN(after));
    start = clock_now;
    for (size_t i = 0; i < ARRAY_LEN(after); i++)
        timer_add(&w, &p[i].timer, start + after[i]);
    int wakeups = 0;
    CHECK_EQ_INT(run_by_next(&w, UINT64_MAX, &wakeups), ARRAY_LEN(after));
    for (size_t i = 0; i < ARRAY_LEN(after); i++)
        CHECK_EQ_INT(p[i].fired_at, start + after[i]);
    CHECK_EQ_INT(norder, ARRAY_LEN(after));
    for (int i = 0; i < norder; i++)
        CHECK_EQ_INT(order[i], i);
    /* re-filing far entries costs a few extra wake-ups, not one per tick */
    CHECK(wakeups < 100);
}

TEST(beyond_top_level)
{
    /* a 1 ms tick makes the wheel span 2^32 ms (49.7 days): go past it */
    timer_wheel_t w;
    probe_t p[2];
    timer_wheel_init(&w, 1000, 1);
    probes_init(p, 2);
    uint64_t far = 1000 + (1ull << 32) * 3 + 12345;
    timer_add(&w, &p[0].timer, far);
    timer_add(&w, &p[1].timer, UINT64_MAX / 2);
    clock_now = 1000;
    CHECK(timer_next_ms(&w, clock_now) > 0);
    CHECK_EQ_INT(run_by_next(&w, far, NULL), 1);
    CHECK_EQ_INT(p[0].fired_at, far);
    CHECK(timer_armed(&p[1].timer));
    clock_now = far + 1;
    CHECK_EQ_INT(timer_run(&w, far + (1ull << 33)), 0);
    timer_del(&p[1].timer);
    CHECK_EQ_INT(timer_next_ms(&w, clock_now), -1);
}

TEST(next_ms)
{
    timer_wheel_t w;
    probe_t p[4];
    timer_wheel_init(&w, 1000, 10);
    probes_init(p, 4);
    CHECK_EQ_INT(timer_next_ms(&w, 1000), -1);

    timer_add(&w, &p[0].timer, 1037);
    CHECK_EQ_INT(timer_next_ms(&w, 1000), 37);
    CHECK_EQ_INT(timer_next_ms(&w, 1030), 7);
    CHECK_EQ_INT(timer_next_ms(&w, 1037), 0);
    CHECK_EQ_INT(timer_next_ms(&w, 2000), 0); /* overdue */

    timer_add(&w, &p[1].timer, 1033); /* same slot, earlier */
    CHECK_EQ_INT(timer_next_ms(&w, 1000), 33);
    timer_add(&w, &p[2].timer, 1002); /* current slot */
    CHECK_EQ_INT(timer_next_ms(&w, 1000), 2);
    timer_del(&p[2].timer);
    timer_del(&p[1].timer);
    CHECK_EQ_INT(timer_next_ms(&w, 1000), 37);

    /* inside the current tick, after a run that fired nothing */
    timer_run(&w, 1031);
    CHECK_EQ_INT(timer_next_ms(&w, 1031), 6);
    timer_run(&w, 1036);
    CHECK_EQ_INT(timer_next_ms(&w, 1036), 1);
    CHECK_EQ_INT(timer_run(&w, 1037), 1);
    CHECK_EQ_INT(timer_next_ms(&w, 1037), -1);

    /* far: never later than the deadline, and reaching it takes few wake-ups */
    timer_add(&w, &p[3].timer, 1037 + 3600000);
    int64_t wait = timer_next_ms(&w, 1037);
    CHECK(wait > 0 && wait <= 3600000);
    clock_now = 1037;
    int wakeups = 0;
    CHECK_EQ_INT(run_by_next(&w, UINT64_MAX, &wakeups), 1);
    CHECK_EQ_INT(p[3].fired_at, 1037 + 3600000);
    CHECK(wakeups <= 8);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* For the bulk test: checks every firing is exact and in order. */
typedef struct bulk {
    timer_entry_t timer;
    uint32_t index;
} bulk_t;

static uint64_t bulk_last;
static size_t bulk_bad;
static size_t bulk_fired;

static void on_bulk(timer_entry_t *e)
{
    if (e->expires != clock_now || e->expires < bulk_last)
        bulk_bad++;
    bulk_last = e->expires;
    bulk_fired++;
}

TEST(many_timers)
{
    enum { N = 100000 };
    static timer_wheel_t w;
    bulk_t *b = calloc(N, sizeof(*b));
    CHECK(b != NULL);
    if (!b)
        return;
    uint64_t start = 50000;
    timer_wheel_init(&w, start, 10);
    for (uint32_t i = 0; i < N; i++) {
        b[i].index = i;
        timer_init(&b[i].timer, on_bulk);
        /* a mix: most within minutes, some up to three hours */
        uint64_t span = (i % 10 == 0) ? 3 * 3600000 : 120000;
        timer_add(&w, &b[i].timer, start + 1 + rng() % span);
    }
    CHECK_EQ_INT(timer_count(&w), N);
    /* delete every third, re-arm every seventh */
    size_t live = 0;
    for (uint32_t i = 0; i < N; i++) {
        if (i % 3 == 0)
            timer_del(&b[i].timer);
        else if (i % 7 == 0)
            timer_add(&w, &b[i].timer, start + 1 + rng() % 600000);
        if (timer_armed(&b[i].timer))
            live++;
    }
    CHECK_EQ_INT(timer_count(&w), live);
    clock_now = start;
    bulk_last = 0;
    bulk_bad = 0;
    bulk_fired = 0;
    CHECK_EQ_INT(run_by_next(&w, UINT64_MAX, NULL), live);
    CHECK_EQ_INT(bulk_fired, live);
    CHECK_EQ_INT(bulk_bad, 0);
    CHECK_EQ_INT(timer_count(&w), 0);
    for (uint32_t i = 0; i < N; i++)
        CHECK(!timer_armed(&b[i].timer));
    free(b);
}

static void on_bulk_order(timer_entry_t *e)
{
    if (e->expires > clock_now || e->expires < bulk_last)
        bulk_bad++;
    bulk_last = e->expires;
    bulk_fired++;
}

TEST(many_timers_one_big_step)
{
    enum { N = 100000 };
    static timer_wheel_t w;
    bulk_t *b = calloc(N, sizeof(*b));
    CHECK(b != NULL);
    if (!b)
        return;
    timer_wheel_init(&w, 0, 10);
    for (uint32_t i = 0; i < N; i++) {
        timer_init(&b[i].timer, on_bulk_order);
        timer_add(&w, &b[i].timer, rng() % (5 * 3600000));
    }
    /* hours in one call: all fire, in deadline order */
    clock_now = 6 * 3600000;
    bulk_last = 0;
    bulk_bad = 0;
    bulk_fired = 0;
    CHECK_EQ_INT(timer_run(&w, clock_now), N);
    CHECK_EQ_INT(bulk_fired, N);
    CHECK_EQ_INT(bulk_bad, 0);
    CHECK_EQ_INT(timer_next_ms(&w, clock_now), -1);
    free(b);
}

/* Random adds, deletes, re-arms and runs against a brute-force model of the same timers. */
typedef struct model {
    timer_entry_t timer;
    uint64_t due; /* model: deadline while armed */
    bool armed;   /* model: armed */
    bool fired;   /* set by the callback */
} model_t;

static void on_model(timer_entry_t *e)
{
    model_t *m = timer_owner(e, model_t, timer);
    m->fired = true;
}

TEST(random_against_model)
{
    enum { N = 2000, ROUNDS = 3000 };
    static timer_wheel_t w;
    static model_t m[N];
    uint64_t now = 777;
    size_t bad_fire = 0, bad_next = 0, bad_armed = 0;
    timer_wheel_init(&w, now, 10);
    for (int i = 0; i < N; i++) {
        timer_init(&m[i].timer, on_model);
        m[i].armed = m[i].fired = false;
    }
    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < 20; k++) {
            model_t *x = &m[rng() % N];
            uint64_t r = rng();
            if (r % 5 == 0) {
                timer_del(&x->timer);
                x->armed = false;
            } else {
                static const uint64_t spans[] = {30, 3000, 700000, 4 * 3600000};
                uint64_t span = spans[r % ARRAY_LEN(spans)];
                /* now and then a deadline already past */
                x->due = (r >> 8) % 16 == 0 ? now - (r >> 16) % 50 : now + (r >> 16) % span;
                timer_add(&w, &x->timer, x->due);
                x->armed = true;
            }
        }
        /* next_ms is never later than the model's earliest deadline, and exact when near */
        uint64_t min = UINT64_MAX;
        for (int i = 0; i < N; i++)
            if (m[i].armed && m[i].due < min)
                min = m[i].due;
        int64_t wait = timer_next_ms(&w, now);
        if (min == UINT64_MAX ? wait != -1 : (wait < 0 || now + (uint64_t)wait > MAX(min, now)))
            bad_next++;
        now += rng() % 4 == 0 ? rng() % 600000 : rng() % 200;
        timer_run(&w, now);
        for (int i = 0; i < N; i++) {
            bool due = m[i].armed && m[i].due <= now;
            if (m[i].fired != due)
                bad_fire++;
            if (due)
                m[i].armed = false;
            m[i].fired = false;
            if (timer_armed(&m[i].timer) != m[i].armed)
                bad_armed++;
        }
    }
    CHECK_EQ_INT(bad_fire, 0);
    CHECK_EQ_INT(bad_next, 0);
    CHECK_EQ_INT(bad_armed, 0);
}

/* A budget bounds one run; the rest fire on the following runs, none lost or fired twice,
 * and timer_next_ms says 0 while some are left. */
TEST(budget_spreads_a_storm_over_runs)
{
    static probe_t p[5000];
    timer_wheel_t w;
    timer_wheel_init(&w, 1000, 10);
    probes_init(p, 5000);
    for (int i = 0; i < 5000; i++)
        timer_add(&w, &p[i].timer, 2000 + (uint64_t)(i % 7)); /* all in one or two ticks */
    clock_now = 3000;
    size_t total = 0, runs = 0, n;
    while ((n = timer_run_budget(&w, 3000, 256)) > 0) {
        CHECK(n <= 256);
        total += n;
        runs++;
        if (total < 5000)
            CHECK_EQ_INT(timer_next_ms(&w, 3000), 0);
    }
    CHECK_EQ_INT(total, 5000);
    CHECK(runs >= 5000 / 256);
    int twice = 0;
    for (int i = 0; i < 5000; i++)
        twice += p[i].fired != 1;
    CHECK_EQ_INT(twice, 0);
    CHECK_EQ_INT(timer_count(&w), 0);
}

TEST_MAIN()

#include "core/timer.h"

#include <string.h>

#define SLOT_MASK (TIMER_SLOTS - 1)
#define SPAN_BITS (TIMER_LEVEL_BITS * TIMER_LEVELS)

static inline unsigned level_shift(unsigned level)
{
    return level * TIMER_LEVEL_BITS;
}

static inline void used_set(timer_wheel_t *w, unsigned level, unsigned slot)
{
    w->used[level][slot / 64] |= 1ull << (slot % 64);
}

static inline void used_clear(timer_wheel_t *w, unsigned level, unsigned slot)
{
    w->used[level][slot / 64] &= ~(1ull << (slot % 64));
}

/* Circular distance from `start` to the first non-empty slot of one level, or -1. */
static int used_next(const uint64_t *bits, unsigned start)
{
    unsigned words = TIMER_SLOTS / 64;
    /* one extra word: the low bits of the first word come last */
    for (unsigned i = 0; i <= words; i++) {
        unsigned word = ((start / 64) + i) % words;
        uint64_t m = bits[word];
        if (i == 0)
            m &= ~0ull << (start % 64);
        else if (i == words)
            m &= ~(~0ull << (start % 64));
        if (m) {
            unsigned idx = word * 64 + (unsigned)__builtin_ctzll(m);
            return (int)((idx - start) & SLOT_MASK);
        }
    }
    return -1;
}

/* Files `e` under `tick` (>= w->cur) at the level whose span covers the distance. */
static void wheel_link(timer_wheel_t *w, timer_entry_t *e, uint64_t tick)
{
    if (tick < w->cur)
        tick = w->cur;
    uint64_t delta = tick - w->cur;
    /* beyond the top level: park at its far end, re-filed by real deadline when cascaded */
    if (delta >> SPAN_BITS) {
        delta = (1ull << SPAN_BITS) - 1;
        tick = w->cur + delta;
    }
    unsigned level = delta ? (unsigned)(63 - __builtin_clzll(delta)) / TIMER_LEVEL_BITS : 0;
    unsigned slot = (unsigned)(tick >> level_shift(level)) & SLOT_MASK;
    timer_entry_t **head = &w->slots[level][slot];
    e->next = *head;
    if (e->next)
        e->next->pprev = &e->next;
    e->pprev = head;
    *head = e;
    used_set(w, level, slot);
}

/* Takes `e` out of whatever list holds it; clears the slot's bit when it empties it. */
static void entry_unlink(timer_entry_t *e)
{
    timer_wheel_t *w = e->wheel;
    *e->pprev = e->next;
    if (e->next) {
        e->next->pprev = e->pprev;
    } else {
        /* the slot heads are one array: pprev inside it means e was alone in that slot */
        uintptr_t off = (uintptr_t)e->pprev - (uintptr_t)&w->slots[0][0];
        if (off < sizeof(w->slots)) {
            size_t idx = off / sizeof(w->slots[0][0]);
            used_clear(w, (unsigned)(idx / TIMER_SLOTS), (unsigned)(idx % TIMER_SLOTS));
        }
    }
    e->next = NULL;
    e->pprev = NULL;
}

/* Moves the whole list of one slot to *into (a list head owned by the caller). */
static void slot_take(timer_wheel_t *w, unsigned level, unsigned slot, timer_entry_t **into)
{
    *into = w->slots[level][slot];
    w->slots[level][slot] = NULL;
    used_clear(w, level, slot);
    if (*into)
        (*into)->pprev = into;
}

static inline uint64_t tick_of(const timer_wheel_t *w, uint64_t ms)
{
    return ms / w->tick_ms;
}

void timer_wheel_init(timer_wheel_t *w, uint64_t now_ms, uint32_t tick_ms)
{
    memset(w, 0, sizeof(*w));
    w->tick_ms = tick_ms ? tick_ms : 1;
    w->cur = tick_of(w, now_ms);
    w->floor = w->cur;
}

void timer_init(timer_entry_t *e, timer_cb_t cb)
{
    memset(e, 0, sizeof(*e));
    e->cb = cb;
}

void timer_add(timer_wheel_t *w, timer_entry_t *e, uint64_t expires_ms)
{
    timer_del(e);
    uint64_t tick = tick_of(w, expires_ms);
    if (tick < w->floor)
        tick = w->floor;
    e->expires = expires_ms;
    e->wheel = w;
    w->count++;
    wheel_link(w, e, tick);
}

void timer_del(timer_entry_t *e)
{
    if (!e->pprev)
        return;
    entry_unlink(e);
    e->wheel->count--;
    e->wheel = NULL;
}

static timer_entry_t *merge_by_expiry(timer_entry_t *a, timer_entry_t *b)
{
    timer_entry_t *head = NULL, **tail = &head;
    while (a && b) {
        timer_entry_t **min = b->expires < a->expires ? &b : &a;
        *tail = *min;
        tail = &(*min)->next;
        *min = (*min)->next;
    }
    *tail = a ? a : b;
    return head;
}

/* Stable merge sort of a singly linked list on `next`; pprev is fixed by the caller. */
static timer_entry_t *sort_by_expiry(timer_entry_t *list)
{
    if (!list || !list->next)
        return list;
    timer_entry_t *slow = list, *fast = list->next;
    while (fast && fast->next) {
        slow = slow->next;
        fast = fast->next->next;
    }
    timer_entry_t *second = slow->next;
    slow->next = NULL;
    return merge_by_expiry(sort_by_expiry(list), sort_by_expiry(second));
}

/*
 * Fires the due entries of level 0's current slot. The slot is first detached into a local
 * list, so callbacks that delete pending entries unlink them from it, and entries they arm land
 * in the wheel (at w->floor or later), never in the batch being walked.
 */
static size_t fire_slot(timer_wheel_t *w, uint64_t now_ms, size_t budget)
{
    timer_entry_t *pending;
    slot_take(w, 0, (unsigned)w->cur & SLOT_MASK, &pending);
    if (!pending)
        return 0;
    pending = sort_by_expiry(pending);
    for (timer_entry_t **pp = &pending; *pp; pp = &(*pp)->next)
        (*pp)->pprev = pp;

    size_t fired = 0;
    timer_entry_t *e;
    while ((e = pending)) {
        entry_unlink(e);
        if (fired == budget) {
            /* out of budget: the rest waits in the current slot for the next run */
            wheel_link(w, e, w->cur);
            continue;
        }
        if (e->expires > now_ms) {
            wheel_link(w, e, tick_of(w, e->expires));
            continue;
        }
        e->wheel = NULL;
        w->count--;
        e->cb(e);
        fired++;
    }
    return fired;
}

/* On entering tick w->cur, moves down the entries of every upper slot that starts there. */
static void cascade(timer_wheel_t *w)
{
    for (unsigned level = TIMER_LEVELS - 1; level >= 1; level--) {
        unsigned shift = level_shift(level);
        if (w->cur & ((1ull << shift) - 1))
            continue;
        timer_entry_t *list;
        slot_take(w, level, (unsigned)(w->cur >> shift) & SLOT_MASK, &list);
        while (list) {
            timer_entry_t *e = list;
            list = e->next;
            wheel_link(w, e, tick_of(w, e->expires));
        }
    }
}

/*
 * The first tick after w->cur where there is work: a non-empty level-0 slot, or the start of
 * a non-empty upper slot (which must cascade). UINT64_MAX when the wheel is empty.
 */
static uint64_t next_event(const timer_wheel_t *w)
{
    uint64_t best = UINT64_MAX;
    for (unsigned level = 0; level < TIMER_LEVELS; level++) {
        unsigned shift = level_shift(level);
        uint64_t block = w->cur >> shift;
        int d = used_next(w->used[level], (unsigned)(block + 1) & SLOT_MASK);
        if (d < 0)
            continue;
        uint64_t t = (block + 1 + (uint64_t)d) << shift;
        if (t < best)
            best = t;
    }
    return best;
}

size_t timer_run(timer_wheel_t *w, uint64_t now_ms)
{
    return timer_run_budget(w, now_ms, SIZE_MAX);
}

size_t timer_run_budget(timer_wheel_t *w, uint64_t now_ms, size_t budget)
{
    uint64_t end = tick_of(w, now_ms);
    if (end < w->cur)
        end = w->cur;
    size_t fired = 0;
    for (;;) {
        /* entries armed by callbacks may not land in a slot this run has already passed */
        w->floor = w->cur < end ? w->cur + 1 : w->cur;
        fired += fire_slot(w, now_ms, budget - fired);
        if (w->cur == end || fired == budget)
            break;
        uint64_t next = w->count ? next_event(w) : end;
        w->cur = MIN(next, end);
        cascade(w);
    }
    w->floor = w->cur;
    return fired;
}

int64_t timer_next_ms(const timer_wheel_t *w, uint64_t now_ms)
{
    if (!w->count)
        return -1;
    uint64_t best = UINT64_MAX;
    /* level 0: the first non-empty slot holds the earliest level-0 deadlines; find the least */
    int d = used_next(w->used[0], (unsigned)w->cur & SLOT_MASK);
    if (d >= 0) {
        const timer_entry_t *e = w->slots[0][(w->cur + (uint64_t)d) & SLOT_MASK];
        for (; e; e = e->next)
            best = MIN(best, e->expires);
    }
    /* upper levels: the moment the first non-empty slot cascades is a lower bound */
    for (unsigned level = 1; level < TIMER_LEVELS; level++) {
        unsigned shift = level_shift(level);
        uint64_t block = w->cur >> shift;
        d = used_next(w->used[level], (unsigned)(block + 1) & SLOT_MASK);
        if (d >= 0)
            best = MIN(best, ((block + 1 + (uint64_t)d) << shift) * w->tick_ms);
    }
    if (best <= now_ms)
        return 0;
    return best - now_ms > INT64_MAX ? INT64_MAX : (int64_t)(best - now_ms);
}

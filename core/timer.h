/*
 * Hierarchical hashed timing wheel: one per reactor thread, no locks. Entries are intrusive
 * (embedded in their owner, recovered with timer_owner) and add, delete and re-arm are O(1).
 * Four levels of 256 slots: at a 10 ms tick, level 0 spans 2.56 s, level 1 11 min, level 2
 * 46 h and level 3 497 days; a later deadline waits at the top level and is re-filed when it
 * comes into range. A timer fires on the first timer_run whose `now` reaches its deadline,
 * never earlier; time is passed in, so tests drive it.
 */
#ifndef CRMD_CORE_TIMER_H
#define CRMD_CORE_TIMER_H

#include "core/common.h"

#define TIMER_LEVEL_BITS 8
#define TIMER_SLOTS      (1u << TIMER_LEVEL_BITS)
#define TIMER_LEVELS     4

typedef struct timer_entry timer_entry_t;
typedef struct timer_wheel timer_wheel_t;

/* Called when an entry expires; the entry is disarmed first, so the callback may re-arm it. */
typedef void (*timer_cb_t)(timer_entry_t *e);

/* A timer embedded in its owner. Zeroed or timer_init'ed means "not armed". */
struct timer_entry {
    timer_entry_t *next;   /* next entry in the same slot */
    timer_entry_t **pprev; /* the pointer that points at this entry; NULL when not armed */
    uint64_t expires;      /* deadline, ms on the caller's clock */
    timer_cb_t cb;         /* what to call when it fires */
    timer_wheel_t *wheel;  /* the wheel holding it while armed */
};

/* The wheel. Embed it or allocate it; it holds no other memory. */
struct timer_wheel {
    timer_entry_t *slots[TIMER_LEVELS][TIMER_SLOTS];
    uint64_t used[TIMER_LEVELS][TIMER_SLOTS / 64]; /* bit set <=> slot not empty */
    uint64_t cur;                                  /* current tick: earlier ticks are done */
    uint64_t floor;                                /* earliest tick timer_add may file under */
    size_t count;                                  /* armed entries */
    uint32_t tick_ms;
};

/* The struct that embeds entry `e` as its field `member`. */
#define timer_owner(e, type, member) ((type *)(void *)((char *)(e)-offsetof(type, member)))

/* Starts an empty wheel at time now_ms with a tick of tick_ms (10 is the intended value). */
void timer_wheel_init(timer_wheel_t *w, uint64_t now_ms, uint32_t tick_ms);

/* Prepares an entry: not armed, fires `cb`. */
void timer_init(timer_entry_t *e, timer_cb_t cb);

/* Arms `e` (its cb must be set) to fire at expires_ms; re-arms it if already armed. */
void timer_add(timer_wheel_t *w, timer_entry_t *e, uint64_t expires_ms);

/* Disarms `e`; does nothing when it is not armed. */
void timer_del(timer_entry_t *e);

/* Whether `e` is waiting to fire. */
static inline bool timer_armed(const timer_entry_t *e)
{
    return e->pprev != NULL;
}

/* How many entries are armed on `w`. */
static inline size_t timer_count(const timer_wheel_t *w)
{
    return w->count;
}

/*
 * Fires every entry with expires <= now_ms, in deadline order; returns how many fired.
 * Callbacks may add, delete or re-arm any entry (themselves included); an entry armed by a
 * callback with a deadline already past fires on the next call. Not reentrant.
 */
size_t timer_run(timer_wheel_t *w, uint64_t now_ms);

/* timer_run firing at most budget entries: the due entries left over fire on the next call
 * (timer_next_ms is then 0), so a loop turn's timer work stays bounded however many expire
 * together. */
size_t timer_run_budget(timer_wheel_t *w, uint64_t now_ms, size_t budget);

/*
 * Milliseconds the loop may wait before calling timer_run: 0 when something is due, -1 when
 * nothing is armed. Never later than the next deadline; earlier only when an entry must first
 * move down from an upper level, in which case it is the time of that move.
 */
int64_t timer_next_ms(const timer_wheel_t *w, uint64_t now_ms);

#endif

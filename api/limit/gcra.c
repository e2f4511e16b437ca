/* GCRA with repeat-violator blocks (see gcra.h): pure functions of their inputs and `now`. */
#include "api/limit/gcra.h"
#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- GCRA ---- */

uint64_t rl_interval_us(const rl_params_t *p)
{
    uint64_t w = (uint64_t)p->window_s * 1000000u;
    return (w + p->limit - 1) / p->limit;
}

static uint32_t ceil_s(uint64_t us)
{
    return (uint32_t)((us + 999999u) / 1000000u);
}

bool rl_gcra_take(uint64_t *tat_us, const rl_params_t *p, uint64_t now_us, rl_result_t *r)
{
    uint64_t t = rl_interval_us(p), tau = t * p->burst;
    uint64_t tat = *tat_us > now_us ? *tat_us : now_us;
    uint64_t next = tat + t;
    memset(r, 0, sizeof(*r));
    if (next - now_us > tau) {
        uint64_t wait = next - tau - now_us;
        r->retry_after_s = ceil_s(wait) ? ceil_s(wait) : 1;
        r->reset_s = r->retry_after_s;
        return false;
    }
    *tat_us = next;
    r->allowed = true;
    r->remaining = (uint32_t)((tau - (next - now_us)) / t);
    r->reset_s = ceil_s(next - now_us);
    return true;
}

/* A rejection while blocked: the block doubles (capped). */
static void escalate(rl_state_t *s, const rl_params_t *p, uint64_t now_ms, rl_result_t *r)
{
    uint64_t cap = (uint64_t)p->max_block_s * 1000u;
    uint64_t b = s->block_ms ? s->block_ms * 2 : 1000;
    s->block_ms = b < cap ? b : cap;
    s->block_until = now_ms + s->block_ms;
    r->allowed = false;
    r->remaining = 0;
    r->retry_after_s = (uint32_t)((s->block_ms + 999) / 1000);
    r->reset_s = r->retry_after_s;
}

/* A block doubles at most once a second: the requests a page sends together all arrive
 * within that second and are one violation, not ten. */
#define ESCALATE_GRACE_MS 1000

bool rl_blocked(rl_state_t *s, const rl_params_t *p, uint64_t now_ms, rl_result_t *r)
{
    if (!p->max_block_s || now_ms >= s->block_until)
        return false;
    if (now_ms - s->escalated_ms < ESCALATE_GRACE_MS) {
        r->allowed = false;
        r->remaining = 0;
        r->retry_after_s = (uint32_t)((s->block_until - now_ms + 999) / 1000);
        r->reset_s = r->retry_after_s;
        return true;
    }
    s->escalated_ms = now_ms;
    escalate(s, p, now_ms, r);
    return true;
}

void rl_note(rl_state_t *s, const rl_params_t *p, uint64_t now_ms, const rl_result_t *r)
{
    if (r->allowed) {
        s->block_ms = 0;
        return;
    }
    if (!p->max_block_s)
        return;
    s->block_ms = (uint64_t)r->retry_after_s * 1000u;
    s->block_until = now_ms + s->block_ms;
    s->escalated_ms = now_ms;
}

rl_result_t rl_take(rl_state_t *s, const rl_params_t *p, uint64_t now_ms)
{
    rl_result_t r;
    if (rl_blocked(s, p, now_ms, &r))
        return r;
    rl_gcra_take(&s->tat_us, p, now_ms * 1000u, &r);
    rl_note(s, p, now_ms, &r);
    return r;
}

bool rl_params_parse(const char *spec, rl_params_t *out)
{
    unsigned long l, w, b = 0;
    int used = 0;
    int k = sscanf(spec, "%lu/%lu%n/%lu%n", &l, &w, &used, &b, &used);
    if (k < 2 || spec[used] || l < 1 || l > 100000000 || w < 1 || w > 86400 || (k == 3 && b < 1) ||
        b > 100000000)
        return false;
    out->limit = (uint32_t)l;
    out->window_s = (uint32_t)w;
    out->burst = (uint32_t)(k == 3 ? b : l);
    return true;
}

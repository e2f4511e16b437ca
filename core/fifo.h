/*
 * An intrusive FIFO: a queue of structs linked through their own `next` member, with no
 * allocation. FIFO(type) declares the queue; push and pop are O(1).
 *
 *     typedef struct job { ...; struct job *next; } job_t;
 *     FIFO(job_t) q = {0};
 *     fifo_push(&q, j);
 *     while ((j = fifo_pop(&q))) ...
 */
#ifndef CRMD_CORE_FIFO_H
#define CRMD_CORE_FIFO_H

#include <stddef.h>

#define FIFO(type)                                                                                           \
    struct {                                                                                                 \
        type *head, *tail;                                                                                   \
    }

/* Appends e (its next is cleared). */
#define fifo_push(q, e)                                                                                      \
    do {                                                                                                     \
        __typeof__((q)->head) fifo_e_ = (e);                                                                 \
        fifo_e_->next = NULL;                                                                                \
        if ((q)->tail)                                                                                       \
            (q)->tail->next = fifo_e_;                                                                       \
        else                                                                                                 \
            (q)->head = fifo_e_;                                                                             \
        (q)->tail = fifo_e_;                                                                                 \
    } while (0)

/* Removes and returns the first element (its next cleared), or NULL. */
#define fifo_pop(q)                                                                                          \
    __extension__({                                                                                          \
        __typeof__((q)->head) fifo_e_ = (q)->head;                                                           \
        if (fifo_e_) {                                                                                       \
            (q)->head = fifo_e_->next;                                                                       \
            if (!(q)->head)                                                                                  \
                (q)->tail = NULL;                                                                            \
            fifo_e_->next = NULL;                                                                            \
        }                                                                                                    \
        fifo_e_;                                                                                             \
    })

/* Takes the whole queue: returns its first element (the rest linked through next), empties q. */
#define fifo_take_all(q)                                                                                     \
    __extension__({                                                                                          \
        __typeof__((q)->head) fifo_e_ = (q)->head;                                                           \
        (q)->head = (q)->tail = NULL;                                                                        \
        fifo_e_;                                                                                             \
    })

#endif

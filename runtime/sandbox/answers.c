/*
 * Answers the host keeps for one tenant's shared.get host calls, so that instance.c answers
 * such a call without entering Python (runtime/host/shared.py Answers says when it may).
 *
 * An answer is kept under the call's input bytes, with the slot of its top-level key and that
 * slot's version when the host read the value. The host adds one to a slot's version after
 * every change of a key hashing to it (it writes `versions` directly, without the lock), so
 * an answer is good while its slot still holds the version it was kept at. Keys sharing a
 * slot only send each other's reads back to the host. A table is some 48 KiB, plus what it
 * keeps (small answers only: a large one is read by Python each time).
 */
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 1024       /* instance.py ANSWER_SLOTS */
#define KEPT 512         /* answers at most; one more drops them all */
#define TABLE (KEPT * 2) /* open addressing: always a free place to stop at */
#define INPUT_MAX 512
#define ANSWER_MAX 4096

typedef struct {
    uint64_t hash; /* 0: a free place */
    uint8_t *bytes; /* the input, then the answer */
    uint32_t input_len, answer_len;
    uint32_t slot;
    uint64_t version;
} answer_t;

typedef struct answers { /* instance.c knows it by this name only */
    volatile uint64_t versions[SLOTS]; /* the host's: aligned words, read whole */
    char lock;
    uint32_t count;
    answer_t table[TABLE];
} answers_t;

static uint64_t hash_of(const uint8_t *p, uint32_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h | 1;
}

static void lock(answers_t *a)
{
    while (__atomic_test_and_set(&a->lock, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void unlock(answers_t *a)
{
    __atomic_clear(&a->lock, __ATOMIC_RELEASE);
}

static answer_t *find(answers_t *a, uint64_t h, const uint8_t *in, uint32_t n)
{
    for (uint32_t i = (uint32_t)h & (TABLE - 1);; i = (i + 1) & (TABLE - 1)) {
        answer_t *e = &a->table[i];
        if (!e->hash || (e->hash == h && e->input_len == n && !memcmp(e->bytes, in, n)))
            return e;
    }
}

/* A tenant's table, empty; never freed (the host keeps a tenant's state for its life). */
answers_t *wxa_new(void)
{
    return calloc(1, sizeof(answers_t));
}

/* Where the slots' versions are, for the host to write. */
uint64_t *wxa_versions(answers_t *a)
{
    return (uint64_t *)a->versions;
}

/* Keep `answer` for `input`, read when `slot` held `version`: not if it has moved on since. */
void wxa_put(answers_t *a, const uint8_t *input, uint32_t input_len, const uint8_t *answer,
             uint32_t answer_len, uint32_t slot, uint64_t version)
{
    if (input_len > INPUT_MAX || answer_len > ANSWER_MAX || slot >= SLOTS)
        return;
    uint8_t *bytes = malloc(input_len + answer_len + 1);
    if (!bytes)
        return;
    memcpy(bytes, input, input_len);
    memcpy(bytes + input_len, answer, answer_len);
    uint64_t h = hash_of(input, input_len);
    lock(a);
    if (a->versions[slot] != version) {
        unlock(a);
        free(bytes);
        return;
    }
    if (a->count >= KEPT) {
        for (uint32_t i = 0; i < TABLE; i++)
            free(a->table[i].bytes);
        memset(a->table, 0, sizeof a->table);
        a->count = 0;
    }
    answer_t *e = find(a, h, input, input_len);
    if (e->hash)
        free(e->bytes);
    else
        a->count++;
    *e = (answer_t){ h, bytes, input_len, answer_len, slot, version };
    unlock(a);
}

/* Copy the good answer kept for `input` to out (cap bytes): its length, or -1 if there is
 * none (or it does not fit). */
int32_t wxa_get(answers_t *a, const uint8_t *input, uint32_t input_len, uint8_t *out, uint32_t cap)
{
    if (input_len > INPUT_MAX)
        return -1;
    uint64_t h = hash_of(input, input_len);
    int32_t n = -1;
    lock(a);
    answer_t *e = find(a, h, input, input_len);
    if (e->hash && e->answer_len <= cap && a->versions[e->slot] == e->version) {
        memcpy(out, e->bytes + e->input_len, e->answer_len);
        n = (int32_t)e->answer_len;
    }
    unlock(a);
    return n;
}

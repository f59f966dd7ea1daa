/*
 * gate/timing.c - wall and CPU time of each phase of a run (load, sort,
 * checks), printed by zonegate --timings.  Measures, decides nothing.
 */
#include "gate/internal.h"

#include <time.h>

static double now_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void timing_start(gate_clock_t *c)
{
    c->wall = now_of(CLOCK_MONOTONIC);
    c->cpu = now_of(CLOCK_PROCESS_CPUTIME_ID);
}

void timing_stop(gate_timings_t *t, const gate_clock_t *c, const char *name,
                 uint64_t items)
{
    if (t->n >= GATE_PHASES_MAX)
        return;
    gate_phase_t *p = &t->p[t->n++];
    p->name = name;
    p->wall = now_of(CLOCK_MONOTONIC) - c->wall;
    p->cpu = now_of(CLOCK_PROCESS_CPUTIME_ID) - c->cpu;
    p->items = items;
}

static void print_set(const gate_timings_t *t, FILE *fp, double *wall,
                      double *cpu)
{
    for (int i = 0; i < t->n; i++) {
        const gate_phase_t *p = &t->p[i];
        fprintf(fp, "zonegate: timing %-10s %8.3f s wall %8.3f s cpu",
                p->name, p->wall, p->cpu);
        if (p->items)
            fprintf(fp, "  %llu items, %.0f/s", (unsigned long long)p->items,
                    p->wall > 0 ? (double)p->items / p->wall : 0.0);
        fputc('\n', fp);
        *wall += p->wall;
        *cpu += p->cpu;
    }
}

void gate_timings_print(const struct gate_zone *z, const struct gate_result *r,
                        FILE *fp)
{
    double wall = 0, cpu = 0;
    if (z)
        print_set(&z->timings, fp, &wall, &cpu);
    if (r)
        print_set(&r->timings, fp, &wall, &cpu);
    fprintf(fp, "zonegate: timing %-10s %8.3f s wall %8.3f s cpu\n", "total",
            wall, cpu);
}

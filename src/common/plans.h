/* plans.h: the plans of doc/api.md, "Limits", their monthly caps and the UTC month they
 * count in. */
#ifndef OFFLOAD_PLANS_H
#define OFFLOAD_PLANS_H

#include <stdint.h>

struct cfg;

enum plan {
	PLAN_SANDBOX,   /* 100 cases a month by default */
	PLAN_PAYG,      /* 100 */
	PLAN_BASE_PRO,  /* 500 */
	PLAN_UNLIMITED, /* no cap: the default for a self-hosted install */
	PLAN_COUNT
};

/* Case-sensitive plan name ("SANDBOX", "PAYG", "BASE_PRO", "UNLIMITED"): 0 or -1. */
int plans_parse(const char *name, enum plan *out);
const char *plans_name(enum plan plan);

/* Reads [plans] sandbox payg base_pro into caps (caps[PLAN_UNLIMITED] = -1, no cap).
 * 0, or -1 with *error_r set. */
int plans_load_caps(struct cfg *cfg, int64_t caps[PLAN_COUNT], const char **error_r);

/* The UTC calendar month containing now_ms: [*start_r, *end_r) in Unix ms. */
void plans_month_bounds(int64_t now_ms, int64_t *start_r, int64_t *end_r);

/* The UTC calendar month containing now_ms as YYYYMM (202612): the key of the usage the caps
 * count (table usage_monthly). */
int plans_month_key(int64_t now_ms);

#endif

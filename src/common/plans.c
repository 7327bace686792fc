/* plans.c: plan names, configurable caps and UTC month arithmetic for usage limits. */
#include <string.h>
#include <time.h>

#include "common/cfg.h"
#include "common/plans.h"

static const char *const plan_names[PLAN_COUNT] = { "SANDBOX", "PAYG", "BASE_PRO", "UNLIMITED" };

int plans_parse(const char *name, enum plan *out)
{
	for (int i = 0; i < PLAN_COUNT; i++) {
		if (strcmp(name, plan_names[i]) == 0) {
			*out = (enum plan)i;
			return 0;
		}
	}
	return -1;
}

const char *plans_name(enum plan plan)
{
	return plan < PLAN_COUNT ? plan_names[plan] : "UNKNOWN";
}

int plans_load_caps(struct cfg *cfg, int64_t caps[PLAN_COUNT], const char **error_r)
{
	if (cfg_get_int(cfg, "plans", "sandbox", 100, 0, INT32_MAX, &caps[PLAN_SANDBOX], error_r) < 0 ||
	    cfg_get_int(cfg, "plans", "payg", 100, 0, INT32_MAX, &caps[PLAN_PAYG], error_r) < 0 ||
	    cfg_get_int(cfg, "plans", "base_pro", 500, 0, INT32_MAX, &caps[PLAN_BASE_PRO], error_r) < 0)
		return -1;
	caps[PLAN_UNLIMITED] = -1;
	return 0;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Howard Hinnant's days_from_civil: no time zone, no libc state. */
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void plans_month_bounds(int64_t now_ms, int64_t *start_r, int64_t *end_r)
{
	time_t secs = (time_t)(now_ms >= 0 ? now_ms / 1000 : (now_ms - 999) / 1000);
	struct tm tm;
	int64_t y;
	unsigned m;

	gmtime_r(&secs, &tm);
	y = tm.tm_year + 1900;
	m = (unsigned)tm.tm_mon + 1;
	*start_r = days_from_civil(y, m, 1) * 86400000;
	if (m == 12)
		*end_r = days_from_civil(y + 1, 1, 1) * 86400000;
	else
		*end_r = days_from_civil(y, m + 1, 1) * 86400000;
}

int plans_month_key(int64_t now_ms)
{
	time_t secs = (time_t)(now_ms >= 0 ? now_ms / 1000 : (now_ms - 999) / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	return (tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
}

/* test-plans.c: plan names, configured caps and UTC month bounds. */
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/plans.h"
#include "test.h"

static void test_names(void)
{
	enum plan p;

	test_begin("plans: names parse exactly");
	test_assert(plans_parse("SANDBOX", &p) == 0 && p == PLAN_SANDBOX);
	test_assert(plans_parse("PAYG", &p) == 0 && p == PLAN_PAYG);
	test_assert(plans_parse("BASE_PRO", &p) == 0 && p == PLAN_BASE_PRO);
	test_assert(plans_parse("UNLIMITED", &p) == 0 && p == PLAN_UNLIMITED);
	test_assert(plans_parse("sandbox", &p) < 0);
	test_assert(plans_parse("PRO", &p) < 0);
	test_assert(plans_parse("", &p) < 0);
	test_assert_str(plans_name(PLAN_BASE_PRO), "BASE_PRO");
	test_end();
}

static void test_caps(void)
{
	static const char text[] = "[plans]\nsandbox = 5\nbase_pro = 1000\n";
	static const char bad[] = "[plans]\npayg = -3\n";
	int64_t caps[PLAN_COUNT];
	const char *err = NULL;
	struct cfg *cfg;

	test_begin("plans: caps default to the documented ones and follow the configuration");
	cfg = cfg_parse("", 0, "empty", &err);
	test_assert(cfg && plans_load_caps(cfg, caps, &err) == 0);
	test_assert(caps[PLAN_SANDBOX] == 100 && caps[PLAN_PAYG] == 100 &&
		    caps[PLAN_BASE_PRO] == 500 && caps[PLAN_UNLIMITED] == -1);
	cfg_free(&cfg);
	cfg = cfg_parse(text, sizeof text - 1, "caps", &err);
	test_assert(cfg && plans_load_caps(cfg, caps, &err) == 0);
	test_assert(caps[PLAN_SANDBOX] == 5 && caps[PLAN_PAYG] == 100 && caps[PLAN_BASE_PRO] == 1000);
	cfg_free(&cfg);
	cfg = cfg_parse(bad, sizeof bad - 1, "bad", &err);
	test_assert(cfg && plans_load_caps(cfg, caps, &err) < 0 && strstr(err, "payg") != NULL);
	cfg_free(&cfg);
	test_end();
}

static void test_month(void)
{
	int64_t s, e;

	test_begin("plans: UTC month bounds");
	/* 2026-03-21T16:42:00Z */
	plans_month_bounds(1774111320000, &s, &e);
	test_assert(s == 1772323200000); /* 2026-03-01T00:00:00Z */
	test_assert(e == 1775001600000); /* 2026-04-01T00:00:00Z */
	/* The first and last millisecond of a month belong to it. */
	plans_month_bounds(1772323200000, &s, &e);
	test_assert(s == 1772323200000);
	plans_month_bounds(1772323199999, &s, &e);
	test_assert(e == 1772323200000 && s == 1769904000000); /* February 2026 */
	/* December rolls into the next year; February of a leap year has 29 days. */
	plans_month_bounds(1798675200000 + 5, &s, &e); /* 2026-12-31T00:00:00.005Z */
	test_assert(s == 1796083200000 && e == 1798761600000);
	plans_month_bounds(1709164800000, &s, &e); /* 2024-02-29T00:00:00Z */
	test_assert(s == 1706745600000 && e == 1709251200000);
	plans_month_bounds(0, &s, &e);
	test_assert(s == 0 && e == 2678400000);
	test_end();

	test_begin("plans: UTC month keys");
	test_assert(plans_month_key(1774111320000) == 202603);
	test_assert(plans_month_key(1772323200000) == 202603);  /* its first millisecond */
	test_assert(plans_month_key(1772323199999) == 202602);  /* the last one before */
	test_assert(plans_month_key(1798761600000 - 1) == 202612);
	test_assert(plans_month_key(1798761600000) == 202701);
	test_assert(plans_month_key(0) == 197001);
	test_end();
}

int main(void)
{
	test_names();
	test_caps();
	test_month();
	return test_done();
}

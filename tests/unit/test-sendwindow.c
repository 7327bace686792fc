/* test-sendwindow.c: parsing send windows, and when they open in real IANA zones
 * (common/sendwindow.c, worker/window.c), DST days included. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/sendwindow.h"
#include "worker/window.h"
#include "test.h"

/* Unix ms of a UTC wall-clock time. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm;

	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return (int64_t)timegm(&tm) * 1000;
}

static struct send_window spec(const char *s)
{
	struct send_window w;
	const char *err = NULL;

	if (send_window_parse_spec(s, &w, &err) != 1) {
		fprintf(stderr, "bad spec in the test: %s: %s\n", s, err ? err : "off");
		abort();
	}
	return w;
}

/* next_open of window s in zone at t. */
static int64_t next(const char *s, const char *zone, int64_t t)
{
	struct send_window w = spec(s);
	struct window_zone *z = window_zone_open(zone);
	int64_t r;

	if (!z) {
		fprintf(stderr, "zone %s is not in this machine's tz database\n", zone);
		abort();
	}
	r = window_next_open(&w, z, t);
	window_zone_free(&z);
	return r;
}

/* The error of a sendWindow JSON text, or "" when it is valid. */
static const char *json_error(const char *text)
{
	static char err[200];
	struct send_window w;
	json_object *v = json_tokener_parse(text), *stored = NULL;

	err[0] = '\0';
	if (send_window_from_json(v, "sendWindow", &w, &stored, err, sizeof err) == 0 && !stored)
		snprintf(err, sizeof err, "(valid but nothing stored)");
	json_object_put(stored);
	json_object_put(v);
	return err;
}

static void test_json(void)
{
	struct send_window w;
	json_object *v, *stored = NULL;
	char err[200];

	test_begin("sendWindow: a valid window is kept as given");
	v = json_tokener_parse("{\"days\":[\"FRI\",\"MON\"],\"start\":\"08:30\",\"end\":\"17:00\","
			       "\"extra\":1}");
	test_assert(send_window_from_json(v, "sendWindow", &w, &stored, err, sizeof err) == 0);
	test_assert(w.days == ((1u << 0) | (1u << 4)));
	test_assert(w.start_min == 8 * 60 + 30 && w.end_min == 17 * 60);
	test_assert_str(json_object_to_json_string_ext(stored, JSON_C_TO_STRING_PLAIN),
			"{\"days\":[\"FRI\",\"MON\"],\"start\":\"08:30\",\"end\":\"17:00\"}");
	json_object_put(stored);
	json_object_put(v);
	test_end();

	test_begin("sendWindow: each rule names its field");
	test_assert_str(json_error("[]"), "sendWindow: must be an object");
	test_assert_str(json_error("{\"start\":\"09:00\",\"end\":\"17:00\"}"),
			"sendWindow.days: is required");
	test_assert_str(json_error("{\"days\":[],\"start\":\"09:00\",\"end\":\"17:00\"}"),
			"sendWindow.days: must be a non-empty array of MON, TUE, WED, THU, FRI, SAT, SUN");
	test_assert_str(json_error("{\"days\":\"MON\",\"start\":\"09:00\",\"end\":\"17:00\"}"),
			"sendWindow.days: must be a non-empty array of MON, TUE, WED, THU, FRI, SAT, SUN");
	test_assert_str(json_error("{\"days\":[\"MON\",\"mon\"],\"start\":\"09:00\",\"end\":\"17:00\"}"),
			"sendWindow.days[1]: must be one of MON, TUE, WED, THU, FRI, SAT, SUN");
	test_assert_str(json_error("{\"days\":[\"MON\",\"MONDAY\"],\"start\":\"09:00\",\"end\":\"17:00\"}"),
			"sendWindow.days[1]: must be one of MON, TUE, WED, THU, FRI, SAT, SUN");
	test_assert_str(json_error("{\"days\":[\"MON\",1],\"start\":\"09:00\",\"end\":\"17:00\"}"),
			"sendWindow.days[1]: must be one of MON, TUE, WED, THU, FRI, SAT, SUN");
	test_assert_str(json_error("{\"days\":[\"MO\\u0000\"],\"start\":\"09:00\",\"end\":\"17:00\"}"),
			"sendWindow.days[0]: must be one of MON, TUE, WED, THU, FRI, SAT, SUN");
	test_assert_str(json_error("{\"days\":[\"TUE\",\"WED\",\"TUE\"],\"start\":\"09:00\",\"end\":\"17:00\"}"),
			"sendWindow.days[2]: TUE is listed twice");
	test_assert_str(json_error("{\"days\":[\"MON\"],\"end\":\"17:00\"}"),
			"sendWindow.start: is required");
	test_assert_str(json_error("{\"days\":[\"MON\"],\"start\":\"9:00\",\"end\":\"17:00\"}"),
			"sendWindow.start: must be HH:MM (00:00 to 23:59)");
	test_assert_str(json_error("{\"days\":[\"MON\"],\"start\":\"09:00\",\"end\":\"24:00\"}"),
			"sendWindow.end: must be HH:MM (00:00 to 23:59)");
	test_assert_str(json_error("{\"days\":[\"MON\"],\"start\":\"09:60\",\"end\":\"17:00\"}"),
			"sendWindow.start: must be HH:MM (00:00 to 23:59)");
	test_assert_str(json_error("{\"days\":[\"MON\"],\"start\":900,\"end\":\"17:00\"}"),
			"sendWindow.start: must be HH:MM (00:00 to 23:59)");
	test_assert_str(json_error("{\"days\":[\"MON\"],\"start\":\"09:00 \",\"end\":\"17:00\"}"),
			"sendWindow.start: must be HH:MM (00:00 to 23:59)");
	test_assert_str(json_error("{\"days\":[\"MON\"],\"start\":\"09:00\",\"end\":\"17:00\\u0000\"}"),
			"sendWindow.end: must be HH:MM (00:00 to 23:59)");
	test_assert_str(json_error("{\"days\":[\"MON\"],\"start\":\"17:00\",\"end\":\"17:00\"}"),
			"sendWindow.end: must be later than sendWindow.start");
	test_assert_str(json_error("{\"days\":[\"MON\"],\"start\":\"22:00\",\"end\":\"06:00\"}"),
			"sendWindow.end: must be later than sendWindow.start");
	test_assert_str(json_error("{\"days\":[\"MON\",\"TUE\",\"WED\",\"THU\",\"FRI\",\"SAT\",\"SUN\"],"
				   "\"start\":\"00:00\",\"end\":\"23:59\"}"), "");
	test_end();

	test_begin("sendWindow: the stored text reads back; anything else is refused");
	test_assert(send_window_from_text("{\"days\":[\"SUN\"],\"start\":\"01:00\",\"end\":\"02:00\"}",
					  &w) == 0 && w.days == 1u << 6 && w.start_min == 60);
	test_assert(send_window_from_text("{\"days\":[\"SUN\"]}", &w) < 0);
	test_assert(send_window_from_text("not json", &w) < 0);
	test_assert(send_window_from_text(NULL, &w) < 0);
	test_end();
}

static void test_spec(void)
{
	struct send_window w;
	const char *err = NULL;
	char buf[80];

	test_begin("[worker] send_window: the syntax");
	test_assert(send_window_parse_spec("", &w, &err) == 0);
	test_assert(send_window_parse_spec("  off ", &w, &err) == 0);
	test_assert(send_window_parse_spec("OFF", &w, &err) == 0);
	test_assert(send_window_parse_spec("MON-FRI 09:00-17:00", &w, &err) == 1);
	test_assert(w.days == 0x1f && w.start_min == 540 && w.end_min == 1020);
	test_assert_str(send_window_format(&w, buf, sizeof buf), "MON,TUE,WED,THU,FRI 09:00-17:00");
	test_assert(send_window_parse_spec("mon,wed,fri  08:30-12:00", &w, &err) == 1);
	test_assert(w.days == 0x15 && w.start_min == 510 && w.end_min == 720);
	/* A range may wrap the week. */
	test_assert(send_window_parse_spec("FRI-MON 10:00-11:00", &w, &err) == 1);
	test_assert(w.days == ((1u << 4) | (1u << 5) | (1u << 6) | 1u));
	test_assert(send_window_parse_spec("SAT,MON-TUE 00:00-23:59", &w, &err) == 1);
	test_assert(w.days == ((1u << 5) | 3u));
	test_end();

	test_begin("[worker] send_window: what is refused");
	err = NULL;
	test_assert(send_window_parse_spec("MON-FRI", &w, &err) < 0 && err);
	test_assert(send_window_parse_spec("09:00-17:00", &w, &err) < 0);
	test_assert(send_window_parse_spec("MON-FRI 9:00-17:00", &w, &err) < 0);
	test_assert(send_window_parse_spec("MON-FRI 17:00-09:00", &w, &err) < 0);
	test_assert(send_window_parse_spec("MON-FRI 09:00-09:00", &w, &err) < 0);
	test_assert(send_window_parse_spec("MON-FRI 09:00-24:00", &w, &err) < 0);
	test_assert(send_window_parse_spec("MON,,FRI 09:00-17:00", &w, &err) < 0);
	test_assert(send_window_parse_spec("MON, 09:00-17:00", &w, &err) < 0);
	test_assert(send_window_parse_spec("MONDAY 09:00-17:00", &w, &err) < 0);
	test_assert(send_window_parse_spec("MON-XYZ 09:00-17:00", &w, &err) < 0);
	test_assert(send_window_parse_spec("MON-FRI 09:00-17:00 extra", &w, &err) < 0);
	test_assert(w.days == 0);
	test_end();

	test_begin("send_window_open_at: the end minute is closed");
	w = spec("MON 09:00-17:00");
	test_assert(send_window_open_at(&w, 0, 540));
	test_assert(send_window_open_at(&w, 0, 1019));
	test_assert(!send_window_open_at(&w, 0, 1020));
	test_assert(!send_window_open_at(&w, 0, 539));
	test_assert(!send_window_open_at(&w, 1, 600));
	test_end();
}

static void test_next_open(void)
{
	struct window_zone *z;
	int64_t t;

	test_begin("zones: known names load, unknown ones do not");
	z = window_zone_open("Asia/Tokyo");
	test_assert(z != NULL);
	window_zone_free(&z);
	test_assert(z == NULL);
	z = window_zone_open("UTC");
	test_assert(z != NULL);
	window_zone_free(&z);
	test_assert(window_zone_open("Mars/Olympus_Mons") == NULL);
	test_assert(window_zone_open("") == NULL);
	test_assert(window_zone_open(NULL) == NULL);
	test_end();

	test_begin("Asia/Tokyo: Monday 03:00 waits for 09:00 the same day");
	/* Monday 2026-12-07 03:00 JST is Sunday 18:00 UTC; 09:00 JST is 00:00 UTC. */
	test_assert(next("MON-FRI 09:00-17:00", "Asia/Tokyo", utc(2026, 12, 6, 18, 0)) ==
		    utc(2026, 12, 7, 0, 0));
	/* Inside the window: now. */
	t = utc(2026, 12, 7, 1, 23) + 456;
	test_assert(next("MON-FRI 09:00-17:00", "Asia/Tokyo", t) == t);
	test_end();

	test_begin("Friday 17:30 waits for Monday 09:00");
	/* Europe/Berlin in winter is UTC+1: Friday 2026-12-04 17:30 is 16:30 UTC. */
	test_assert(next("MON-FRI 09:00-17:00", "Europe/Berlin", utc(2026, 12, 4, 16, 30)) ==
		    utc(2026, 12, 7, 8, 0));
	test_assert(next("MON-FRI 09:00-17:00", "Asia/Tokyo", utc(2026, 12, 4, 8, 30)) ==
		    utc(2026, 12, 7, 0, 0));
	test_end();

	test_begin("the boundaries: start is open, end is closed");
	test_assert(next("MON-FRI 09:00-17:00", "UTC", utc(2026, 12, 7, 9, 0)) == utc(2026, 12, 7, 9, 0));
	test_assert(next("MON-FRI 09:00-17:00", "UTC", utc(2026, 12, 7, 17, 0) - 1) ==
		    utc(2026, 12, 7, 17, 0) - 1);
	test_assert(next("MON-FRI 09:00-17:00", "UTC", utc(2026, 12, 7, 17, 0)) == utc(2026, 12, 8, 9, 0));
	test_assert(next("MON-FRI 09:00-17:00", "UTC", utc(2026, 12, 7, 9, 0) - 1) == utc(2026, 12, 7, 9, 0));
	/* Sunday 23:59 waits for Monday. */
	test_assert(next("MON 09:00-17:00", "UTC", utc(2026, 12, 13, 23, 59)) == utc(2026, 12, 14, 9, 0));
	/* After the last day of the week: a week later. */
	test_assert(next("MON 09:00-17:00", "UTC", utc(2026, 12, 7, 17, 0)) == utc(2026, 12, 14, 9, 0));
	test_end();

	test_begin("America/Los_Angeles: a start clocks skip over opens at the first valid minute");
	/* Sunday 2026-03-08: 02:00 PST becomes 03:00 PDT (10:00 UTC). At 01:00 PST (09:00 UTC) a
	 * 02:30 start opens at 03:00 PDT. */
	test_assert(next("SUN 02:30-05:00", "America/Los_Angeles", utc(2026, 3, 8, 9, 0)) ==
		    utc(2026, 3, 8, 10, 0));
	/* From the week before, the same. */
	test_assert(next("SUN 02:30-05:00", "America/Los_Angeles", utc(2026, 3, 2, 0, 0)) ==
		    utc(2026, 3, 8, 10, 0));
	/* Already open at 03:10 PDT. */
	test_assert(next("SUN 02:30-05:00", "America/Los_Angeles", utc(2026, 3, 8, 10, 10)) ==
		    utc(2026, 3, 8, 10, 10));
	/* The end is local 05:00 PDT (12:00 UTC). */
	test_assert(next("SUN 02:30-05:00", "America/Los_Angeles", utc(2026, 3, 8, 12, 0)) ==
		    utc(2026, 3, 15, 9, 30));
	/* A window wholly inside the gap does not open that day: the next Sunday, 02:00 PDT. */
	test_assert(next("SUN 02:00-02:30", "America/Los_Angeles", utc(2026, 3, 8, 9, 0)) ==
		    utc(2026, 3, 15, 9, 0));
	/* 09:00 the day after is plain PDT (16:00 UTC). */
	test_assert(next("MON-FRI 09:00-17:00", "America/Los_Angeles", utc(2026, 3, 8, 9, 0)) ==
		    utc(2026, 3, 9, 16, 0));
	test_end();

	test_begin("America/Los_Angeles: the repeated hour when clocks go back");
	/* Sunday 2026-11-01: 01:00-02:00 happens twice, PDT (08:00-09:00 UTC) then PST
	 * (09:00-10:00 UTC). A 01:30 start opens at its first occurrence. */
	test_assert(next("SUN 01:30-03:00", "America/Los_Angeles", utc(2026, 11, 1, 7, 30)) ==
		    utc(2026, 11, 1, 8, 30));
	/* ... and stays open through the repeat (01:10 PST, after 01:30 PDT). */
	test_assert(next("SUN 01:30-03:00", "America/Los_Angeles", utc(2026, 11, 1, 9, 10)) ==
		    utc(2026, 11, 1, 9, 10));
	/* It closes at 03:00 PST (11:00 UTC). */
	test_assert(next("SUN 01:30-03:00", "America/Los_Angeles", utc(2026, 11, 1, 11, 0)) ==
		    utc(2026, 11, 8, 9, 30));
	/* An end in the repeated hour closes at its first occurrence (01:30 PDT): 01:10 PST is
	 * after the window, and waits a week (00:00 PST on 2026-11-08 is 08:00 UTC). */
	test_assert(next("SUN 00:00-01:30", "America/Los_Angeles", utc(2026, 11, 1, 8, 10)) ==
		    utc(2026, 11, 1, 8, 10));
	test_assert(next("SUN 00:00-01:30", "America/Los_Angeles", utc(2026, 11, 1, 9, 10)) ==
		    utc(2026, 11, 8, 8, 0));
	/* Monday 09:00 is plain PST (17:00 UTC). */
	test_assert(next("MON-FRI 09:00-17:00", "America/Los_Angeles", utc(2026, 11, 1, 8, 30)) ==
		    utc(2026, 11, 2, 17, 0));
	test_end();

	test_begin("odd zones: a half-hour DST gap, a skipped day, far in the future");
	/* Australia/Lord_Howe moves 02:00 to 02:30 on Sunday 2026-10-04 (UTC+10:30 to +11). A
	 * 02:15 start opens at 02:30 local, 15:30 UTC the day before. */
	test_assert(next("SUN 02:15-04:00", "Australia/Lord_Howe", utc(2026, 10, 3, 15, 0)) ==
		    utc(2026, 10, 3, 15, 30));
	/* Pacific/Apia skipped Friday 2011-12-30: a Friday window opens the Friday after
	 * (2012-01-06 09:00 at UTC+14 is 2012-01-05 19:00 UTC). */
	test_assert(next("FRI 09:00-17:00", "Pacific/Apia", utc(2011, 12, 29, 10, 0)) ==
		    utc(2012, 1, 5, 19, 0));
	/* 2040's rules come from the zone's POSIX footer: 02:30 on 2040-03-11 does not exist. */
	test_assert(next("SUN 02:30-05:00", "America/Los_Angeles", utc(2040, 3, 11, 9, 0)) ==
		    utc(2040, 3, 11, 10, 0));
	test_end();
}

int main(void)
{
	test_json();
	test_spec();
	test_next_open();
	return test_done();
}

/* window.c: send windows in IANA time zones (GLib's GTimeZone over the system tz database). */
#include <glib.h>

#include "worker/window.h"

/* The opaque zone is the GTimeZone itself. */
struct window_zone;

struct window_zone *window_zone_open(const char *name)
{
	/* g_time_zone_new_identifier (GLib 2.68) returns NULL for an unknown name, where
	 * g_time_zone_new quietly gave UTC. */
	return name && *name ? (struct window_zone *)g_time_zone_new_identifier(name) : NULL;
}

void window_zone_free(struct window_zone **z)
{
	if (*z)
		g_time_zone_unref((GTimeZone *)*z);
	*z = NULL;
}

/* The UTC offset (s) of zone tz at instant t (s). */
static gint64 offset_at(GTimeZone *tz, gint64 t)
{
	return g_time_zone_get_offset(tz, g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, t));
}

/*
 * The first instant (s) whose local time is local (seconds since 1970-01-01 00:00 local).
 * When local happens twice (clocks going back), GLib answers with either interval by the
 * type asked; both are tried and the earlier real one wins. When local does not happen (a
 * gap), g_time_zone_adjust_time moves it to the end of the gap, the first valid time.
 */
static gint64 first_instant(GTimeZone *tz, gint64 local)
{
	static const GTimeType types[2] = { G_TIME_TYPE_DAYLIGHT, G_TIME_TYPE_STANDARD };
	gint64 best = 0, adjusted = local;
	int found = 0;

	for (int k = 0; k < 2; k++) {
		int i = g_time_zone_find_interval(tz, types[k], local);
		gint64 off, t;

		if (i < 0)
			continue;
		off = g_time_zone_get_offset(tz, i);
		t = local - off;
		/* Only an instant that really shows this local time counts. */
		if (offset_at(tz, t) != off)
			continue;
		if (!found || t < best)
			best = t;
		found = 1;
	}
	if (found)
		return best;
	{
		int i = g_time_zone_adjust_time(tz, G_TIME_TYPE_STANDARD, &adjusted);

		return adjusted - g_time_zone_get_offset(tz, i);
	}
}

static gint64 floor_div(gint64 a, gint64 b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int64_t window_next_open(const struct send_window *w, const struct window_zone *z, int64_t t_ms)
{
	GTimeZone *tz = (GTimeZone *)z;
	gint64 t = floor_div(t_ms, 1000);
	gint64 today = floor_div(t + offset_at(tz, t), 86400);

	/* From the day before (a local date can repeat when clocks go back over midnight) to
	 * two weeks ahead (a day can be skipped: Pacific/Apia, 2011-12-30). */
	for (gint64 day = today - 1; day <= today + 15; day++) {
		/* 1970-01-01 was a Thursday: weekday 3 counting from Monday. */
		int wday = (int)(((day + 3) % 7 + 7) % 7);
		gint64 open, close;

		if (!(w->days & (1u << wday)))
			continue;
		open = first_instant(tz, day * 86400 + (gint64)w->start_min * 60);
		close = first_instant(tz, day * 86400 + (gint64)w->end_min * 60);
		if (close <= open)
			continue; /* the window lies in a gap: not that day */
		if (t_ms < open * 1000)
			return open * 1000;
		if (t_ms < close * 1000)
			return t_ms;
	}
	return -1;
}

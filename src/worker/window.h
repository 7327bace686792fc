/* window.h: when a send window (common/sendwindow.h) is open, in an IANA time zone read from
 * the system's tz database through GLib's GTimeZone (thread-safe; no TZ switching, no
 * hand-written DST rules). doc/api.md "Send windows" is the contract. */
#ifndef OFFLOAD_WORKER_WINDOW_H
#define OFFLOAD_WORKER_WINDOW_H

#include <stdint.h>

#include "common/sendwindow.h"

/* A loaded time zone; immutable, so one may be shared by threads. */
struct window_zone;

/* Loads the zone named name ("Asia/Tokyo", "UTC") from the tz database. Returns a zone the
 * caller frees with window_zone_free, or NULL when the name is unknown. */
struct window_zone *window_zone_open(const char *name);

/* Frees *z (NULL is fine) and clears the pointer. */
void window_zone_free(struct window_zone **z);

/*
 * The first instant at or after t_ms (Unix ms) at which w is open in zone z: t_ms itself
 * when it is inside the window, else the start of the next window (a whole second).
 *
 * On each listed day (by the zone's local calendar) the window opens at the first instant
 * whose local time reaches start and closes at the first instant whose local time reaches
 * end, and is open once in between:
 * - a start that does not exist that day (clocks go forward over it) opens the window at
 *   the first valid minute after the gap (02:30 in a 02:00→03:00 gap opens at 03:00); a
 *   window lying wholly inside the gap does not open that day;
 * - a start or end in the hour that repeats when clocks go back means its first
 *   occurrence; the window then stays open through the repeat until it closes.
 * Returns the instant, or -1 when the window never opens in the next fortnight (only
 * possible for a window lying in gaps; the caller then sends without waiting).
 */
int64_t window_next_open(const struct send_window *w, const struct window_zone *z, int64_t t_ms);

#endif

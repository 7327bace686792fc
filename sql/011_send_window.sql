-- 011_send_window.sql: a case's own send window (doc/api.md "Send windows"): the sendWindow
-- object of POST /cases as the client gave it (days, start, end), JSON text; NULL when the
-- case has none (the worker then uses [worker] send_window, which is off by default).
-- The hold itself needs no column: the worker moves next_action_at (and the event's
-- available_at) to the window's opening, so the due scan stays a range of cases_due.
-- A nullable column without a default is added in place (ALGORITHM=INSTANT), even at a
-- million cases.
ALTER TABLE cases ADD COLUMN send_window VARCHAR(256) CHARACTER SET ascii NULL;

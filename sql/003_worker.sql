-- 003_worker.sql: what the worker needs beyond 001: a per-case lease so one case is worked
-- by one worker at a time, and the link from an outbound message to the event that sent it
-- (to reconcile after a crash without sending twice).

ALTER TABLE cases
  ADD COLUMN lease_owner VARCHAR(64) CHARACTER SET ascii NULL,
  ADD COLUMN lease_until BIGINT NULL;

ALTER TABLE messages
  ADD COLUMN event_id BIGINT NULL,
  ADD COLUMN send_error TEXT NULL,
  ADD KEY messages_event (event_id);

-- Finding the pending follow-up of a case, and the events of a type.
ALTER TABLE events
  ADD KEY events_case_type (case_id, type, state);

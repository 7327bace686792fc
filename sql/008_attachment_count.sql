-- 008_attachment_count.sql: how many attachments a case has, kept on the case row by the
-- transaction that stores them, so that GET /cases/{id} knows whether to load the list
-- without a subquery per request (the correlated EXISTS cost about 45 us of server CPU of
-- the 120 us the whole statement took; tests/bench/README.md).
ALTER TABLE cases ADD COLUMN attachment_count INT NOT NULL DEFAULT 0;

UPDATE cases c SET attachment_count = (SELECT COUNT(*) FROM attachments a WHERE a.case_id = c.id);

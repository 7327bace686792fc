-- 007_exact_match.sql: stored strings that are looked up or compared match exactly
-- (doc/api.md, "Requests and responses").
-- utf8mb4_bin is a PAD SPACE collation, so "ref-X" = "ref-X " there; utf8mb4_nopad_bin
-- compares every byte, trailing spaces included. A column declared CHARACTER SET ascii with
-- no collation is ascii_general_ci, which also folds case; ascii_nopad_bin does not. (The
-- CHAR(36) ids stay as they are: they are keys of foreign keys, and offload-api should refuse
-- an id that is not a lowercase UUID before it looks it up; see doc/hostile-input.md.)

-- GET /cases?clientReferenceId=ref-X lists ref-X only, never "ref-X " (the index is rebuilt).
ALTER TABLE cases
  MODIFY client_reference_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL;

-- Idempotency-Key "k" and "k " are two keys (the primary key compares with the column's
-- collation, so it follows).
ALTER TABLE idempotency_keys
  MODIFY idem_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;

-- Message-IDs (RFC 5322 §3.6.4; the left part is case-sensitive) were ascii_general_ci: a
-- reply's In-Reply-To matched our message in any case, and two inbound messages whose ids
-- differ only in case were one to the unique key (the second was dropped as a duplicate).
ALTER TABLE messages
  MODIFY message_id VARCHAR(998) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
  MODIFY in_reply_to VARCHAR(998) CHARACTER SET ascii COLLATE ascii_nopad_bin NULL,
  MODIFY inbound_message_id VARCHAR(998) CHARACTER SET ascii COLLATE ascii_nopad_bin
    AS (IF(direction = 'inbound', message_id, NULL)) PERSISTENT;

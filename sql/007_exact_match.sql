-- 007_exact_match.sql: stored strings that are looked up or compared match exactly (SPEC §2).
-- utf8mb4_bin is a PAD SPACE collation, so "ref-X" = "ref-X " there; and a column declared
-- CHARACTER SET ascii without a collation gets ascii_general_ci, which also folds case.
-- The NO PAD binary collations compare every byte, trailing spaces included.

-- GET /cases?clientReferenceId=ref-X lists ref-X only, never "ref-X " (the index is rebuilt).
ALTER TABLE cases
  MODIFY client_reference_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL;

-- Idempotency-Key "k" and "k " are two keys (the primary key compares with the column's
-- collation, so it follows).
ALTER TABLE idempotency_keys
  MODIFY idem_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;

-- Message-IDs (RFC 5322 §3.6.4: the left part is case-sensitive): a reply's In-Reply-To
-- matches our message byte for byte, and two inbound messages whose ids differ only in case
-- are two messages, not a duplicate dropped by the unique key.
ALTER TABLE messages
  MODIFY message_id VARCHAR(998) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
  MODIFY in_reply_to VARCHAR(998) CHARACTER SET ascii COLLATE ascii_nopad_bin NULL,
  MODIFY inbound_message_id VARCHAR(998) CHARACTER SET ascii COLLATE ascii_nopad_bin
    AS (IF(direction = 'inbound', message_id, NULL)) PERSISTENT;

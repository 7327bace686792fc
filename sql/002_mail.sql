-- 002_mail.sql: inbound mail: IMAP polling progress per mailbox, and one stored copy per
-- inbound Message-ID.

-- Where IMAP polling stands: the mailbox's UIDVALIDITY and the highest UID handed to the
-- ingest code. A changed UIDVALIDITY starts the mailbox over from UID 0.
CREATE TABLE mailbox_state (
  mailbox VARCHAR(255) NOT NULL PRIMARY KEY,
  uidvalidity BIGINT NOT NULL,
  last_uid BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- An inbound message is stored once even when two deliveries race (IMAP and the MTA pipe,
-- or two workers): the Message-ID of inbound rows is unique; outbound rows stay NULL here.
ALTER TABLE messages
  ADD COLUMN inbound_message_id VARCHAR(998) CHARACTER SET ascii
    AS (IF(direction = 'inbound', message_id, NULL)) PERSISTENT,
  ADD UNIQUE KEY messages_inbound_message_id (inbound_message_id);

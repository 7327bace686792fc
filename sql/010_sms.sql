-- 010_sms.sql: the SMS channel through Kannel (doc/api.md, SMS; doc/operator-guide.md,
-- SMS): one open SMS case per number, opt-outs, and what SMS messages carry beyond mail.

-- At most one open (not COMPLETED/FAILED) SMS case per counterparty number: the number of
-- an open SMS case, NULL otherwise, unique. It is also how an incoming SMS finds its case.
ALTER TABLE cases
  ADD COLUMN sms_open_number VARCHAR(16) CHARACTER SET ascii COLLATE ascii_nopad_bin
    AS (IF(channel = 'SMS' AND status NOT IN ('COMPLETED', 'FAILED'), counterparty_address,
           NULL)) PERSISTENT,
  ADD UNIQUE KEY cases_sms_open_number (sms_open_number);

-- One row per number ever used for SMS, locked (written) by every transaction that decides
-- something about the number: creating a case for it, and an incoming STOP/START from it.
-- Those transactions queue on this row, so two POST /cases to one number cannot both pass
-- the open-case and opt-out checks (a Galera cluster certifies the write the same way).
CREATE TABLE sms_numbers (
  number VARCHAR(16) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL PRIMARY KEY,
  touched_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Numbers that answered STOP (or were added by the operator): no case is created for them
-- and nothing more is sent to them until START/UNSTOP or "offloadctl sms optout clear".
CREATE TABLE sms_optouts (
  number VARCHAR(16) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL PRIMARY KEY,
  since BIGINT NOT NULL,
  case_id CHAR(36) CHARACTER SET ascii NULL,
  keyword VARCHAR(16) CHARACTER SET ascii NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Messages: the channel (an unmatched inbound SMS has no case to say it), Kannel's id of
-- an incoming SMS (Kannel retries: the same id is stored once), and the delivery report
-- of an outbound SMS (Kannel's dlr-url callback).
ALTER TABLE messages
  ADD COLUMN channel VARCHAR(8) CHARACTER SET ascii NOT NULL DEFAULT 'EMAIL',
  ADD COLUMN kannel_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NULL,
  ADD COLUMN delivery_state VARCHAR(16) CHARACTER SET ascii NULL,
  ADD COLUMN delivery_at BIGINT NULL,
  ADD COLUMN delivery_report TEXT NULL,
  ADD UNIQUE KEY messages_kannel_id (kannel_id),
  ADD KEY messages_channel_unmatched (channel, case_id, created_at);

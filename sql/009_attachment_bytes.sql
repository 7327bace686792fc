-- 009_attachment_bytes.sql: attachment bytes in the database, so that every API host serves
-- every attachment and losing a host loses none (doc/operator-guide.md, "Scaling out").
-- The bytes of one attachment are rows of at most 256 KiB (STORE_ATTACHMENT_CHUNK in
-- src/store/attachments.h), written in the transaction that writes the attachments row: a
-- download streams them one by one, and no row comes near Galera's writeset limits.
-- Attachments stored before this migration have no chunks and are still served from
-- [files] dir (attachments.storage_path) through nginx.
CREATE TABLE IF NOT EXISTS attachment_chunks (
  attachment_id CHAR(36) CHARACTER SET ascii NOT NULL,
  seq INT NOT NULL,
  data MEDIUMBLOB NOT NULL,
  PRIMARY KEY (attachment_id, seq)
) ENGINE=InnoDB;

-- Named leases (src/store/lease.c): a row per lock with its owner and expiry, taken and
-- renewed in transactions. They replace GET_LOCK, which Galera does not replicate: the
-- per-mailbox lock of IMAP polling lives here. (offloadctl migrate creates this table
-- itself before it runs any file, because its own lock is one of these rows.)
CREATE TABLE IF NOT EXISTS named_leases (
  name VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  owner VARCHAR(128) CHARACTER SET ascii NOT NULL,
  expires_at BIGINT NOT NULL,
  taken_at BIGINT NOT NULL
) ENGINE=InnoDB;

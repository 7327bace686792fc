-- 006_bounce_tag_key.sql: the key that signs the tag of our envelope senders
-- (bounces+<tag>@domain, src/mail/verp.c). Delivery and feedback reports attach to a case
-- only at a tag made with it. Shared by every worker and every offload-inbound.
INSERT IGNORE INTO settings (name, value) VALUES ('bounce_tag_key', RANDOM_BYTES(32));

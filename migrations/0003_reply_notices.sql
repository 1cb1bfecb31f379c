-- Amazon's notices about replies, once each (docs/replies.md): a notice
-- mail redelivered by SQS, or handled twice at once, must not fail a
-- second reply to the same buyer. Keyed by the notice mail's receipt id
-- (SES's message id, the S3 object's name), written in the transaction
-- that fails the reply it concerns.
CREATE TABLE IF NOT EXISTS keybuzz_amazon."ReplyNotice" (
    "noticeId"   text PRIMARY KEY,
    "tenantId"   text NOT NULL,
    "replyId"    text NOT NULL,
    "receivedAt" timestamptz(3) NOT NULL DEFAULT now()
);

-- Replies delivered to QQ through OneBot (the reverse WebSocket or the HTTP API) get a message id
-- from QQ: kept with the delivery, so the platform's id of our reply can be found (recalls, quotes).
ALTER TABLE deliveries ADD COLUMN platform_message_id text;

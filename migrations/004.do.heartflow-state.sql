-- Heartflow per chat stream: the decision state the worker carries from batch to batch
-- (willingness, state, last reply, …) and the stream's heartflow configuration.
ALTER TABLE chat_streams
  ADD COLUMN heartflow_state jsonb,
  ADD COLUMN heartflow_config jsonb NOT NULL DEFAULT '{}'::jsonb;

-- The worker claims a stream's pending inbound messages oldest first.
CREATE INDEX messages_stream_pending ON messages (tenant_id, chat_stream_id, created_at)
  WHERE direction = 'in' AND status IN ('queued', 'processing');

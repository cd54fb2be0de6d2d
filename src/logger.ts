import pino from 'pino';

/** Paths whose values never reach a log line: credentials, tokens, passwords, LLM keys. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  '*.password',
  '*.password_hash',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.api_key',
  '*.apiKey',
  '*.llm_api_key',
  '*.webhook_secret',
  '*.secret',
  'password',
  'token',
  'api_key',
  'apiKey',
  'connectionString',
  '*.connectionString',
];

export type Logger = pino.Logger;

export interface LoggerOptions {
  /** pino level; default `info`. */
  level?: pino.LevelWithSilent;
  /**
   * Destination stream; default stdout, written asynchronously (lines written while a write is
   * out go together in the next one, so a busy process makes far fewer syscalls than lines; what
   * is buffered is flushed synchronously on exit). Tests pass a buffer to assert on redaction.
   */
  destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'maihive' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

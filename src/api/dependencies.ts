import type { Redis } from 'ioredis';

import type { Config } from '../config';
import type { Database } from '../db/database';
import type { Clock } from '../domain/clock';
import type { Logger } from '../logger';

/** Everything the HTTP layer needs, built once by the runtime and passed down. */
export interface Dependencies {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Database;
  readonly redis: Redis;
  readonly clock: Clock;
  readonly version: string;
  /** ms since the epoch when the process started. */
  readonly startedAt: number;
  /** Highest migration on disk; `/ready` fails until the database has it. */
  readonly expectedSchemaVersion: number;
}

import type { Redis } from 'ioredis';

import type { IngressGate } from './api/http/ingressGate';
import type { RefusalLog } from './api/http/refusalLog';
import type { ApiKeyDirectory } from './auth/apiKeyDirectory';
import type { TenantDirectory } from './auth/tenantDirectory';
import type { TokenService } from './auth/tokens';
import type { Config } from './config';
import type { EffectiveConfigReader } from './configuration/effectiveConfig';
import type { Database } from './db/database';
import type { MemoryAccessCounter } from './db/memoryAccessCounter';
import type { SecretSealer } from './domain/agentConfig';
import type { Clock } from './domain/clock';
import type { OutcomeWaiters } from './ingress/outcomeWaiters';
import type { RateRefusals } from './ingress/rateRefusals';
import type { Logger } from './logger';
import type { PluginRuntime } from './plugins/pluginRuntime';
import type { TenantQueues } from './queues/tenantQueues';
import type { ChannelHub } from './redis/channelHub';
import type { Keyspace } from './redis/keys';
import type { ProcessBeat } from './telemetry/processBeat';
import type { TelemetryRecorder } from './telemetry/telemetryRecorder';

/** Everything the HTTP layer needs, built once by the runtime (or a test) and passed down. */
export interface Dependencies {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Database;
  /** Shared non-blocking Redis connection (commands, queue adds). */
  readonly redis: Redis;
  readonly keys: Keyspace;
  readonly queues: TenantQueues;
  /** The process's one Redis subscriber connection (SSE fan-out, `?wait` outcomes). */
  readonly channels: ChannelHub;
  /** `?wait` requests waiting for their messages' outcomes, on `channels`. */
  readonly outcomes: OutcomeWaiters;
  /** Fair overload control of this API process (per-tenant in-flight limits, shedding). */
  readonly ingress: IngressGate;
  /** Rate buckets this process saw empty: sends needing them are refused without a round trip. */
  readonly rateRefusals: RateRefusals;
  /** The access log's 429s, summed per tenant and interval instead of a line each. */
  readonly refusalLog: RefusalLog;
  readonly tokens: TokenService;
  readonly tenants: TenantDirectory;
  /** API keys as authentication reads them, cached in Redis. */
  readonly apiKeys: ApiKeyDirectory;
  /** Seals agents' LLM API keys before they are stored; the HTTP layer never opens them. */
  readonly secrets: SecretSealer;
  /** Opens agents' OneBot HTTP POST secrets, to check NapCat's `X-Signature` (nothing else). */
  readonly adapterSecrets: { decrypt(sealed: string): string };
  /** Effective configuration (tenant < agent < platform < chat), cached and kept fresh by pub/sub. */
  readonly configReader: EffectiveConfigReader;
  /** The plugin catalog, sandbox and PluginAPI of this process (`POST /plugins/{id}/execute`). */
  readonly plugins: PluginRuntime;
  /** Measurements shared by every process through Redis (`/stats/api`, `/stats/performance`, ...). */
  readonly telemetry: TelemetryRecorder;
  /** Access counts of memory searches, written off the request's path. */
  readonly memoryAccess: MemoryAccessCounter;
  /** This process's heartbeat (`/monitor/status` lists the live processes). */
  readonly processBeat: ProcessBeat;
  readonly clock: Clock;
  readonly version: string;
  /** ms since the epoch when the process started. */
  readonly startedAt: number;
  /** Highest migration on disk; `/ready` fails until the database has it. */
  readonly expectedSchemaVersion: number;
}

import type { JobsOptions } from 'bullmq';

import type { TenantQueues } from '../queues/tenantQueues';

/**
 * Busy streams of busy tenants are answered in gathered passes: when a tenant sends many
 * messages per second and one of its streams was answered a moment ago, the next pass of that
 * stream waits `GATHER_MS` (in a delayed "sweep" job, holding no worker slot) and answers
 * everything that arrived meanwhile at once. A flood then costs a pass per stream and second, not
 * one per message — and so do LLM calls. A quiet tenant, or a busy tenant's quiet stream, is
 * answered at once as before.
 */

/** How long a busy stream gathers before its next pass, ms. */
export const GATHER_MS = 1000;
/** A stream whose previous pass ended less than this long ago is busy, ms. */
export const HOT_STREAM_GAP_MS = 1000;
/** Heartflow jobs per second of a tenant, in one worker process, from which it counts as busy. */
export const BUSY_TENANT_JOBS_PER_S = 10;
/** How long a handed-over stream lock outlives its sweep's due time, ms (the sweep may queue). */
export const SWEEP_GRACE_MS = 10_000;

/**
 * Jobs per second per tenant, as an exponentially decaying count (time constant `tauMs`): a
 * steady r jobs/s reads r. Pure; time is the caller's.
 */
export class TenantHeat {
  private readonly tenants = new Map<string, { value: number; at: number }>();

  constructor(
    private readonly tauMs = 1000,
    /** Tenants remembered at most; the least recently seen is forgotten beyond. */
    private readonly maxTenants = 10_000,
  ) {}

  /** Counts one job of the tenant at `nowMs`; returns its rate, jobs/s. */
  record(tenantId: string, nowMs: number): number {
    const value = this.decayed(tenantId, nowMs) + 1;
    this.tenants.delete(tenantId);
    if (this.tenants.size >= this.maxTenants) this.tenants.delete(this.tenants.keys().next().value!);
    this.tenants.set(tenantId, { value, at: nowMs });
    return (value * 1000) / this.tauMs;
  }

  /** The tenant's rate at `nowMs`, jobs/s. */
  rate(tenantId: string, nowMs: number): number {
    return (this.decayed(tenantId, nowMs) * 1000) / this.tauMs;
  }

  private decayed(tenantId: string, nowMs: number): number {
    const t = this.tenants.get(tenantId);
    if (!t) return 0;
    return t.value * Math.exp(-Math.max(0, nowMs - t.at) / this.tauMs);
  }
}

/** A delayed pass over one chat stream, holding the stream's lock handed over under `lockToken`. */
export interface SweepJobData {
  sweep: true;
  /** As `HeartflowJobData.rerun`: the messages a failed pass of this sweep left `failed`. */
  rerun?: string[];
  tenantId: string;
  agentId: string;
  platform: string;
  chatStreamId: string;
  lockToken: string;
  /** How many sweeps this lock was handed through before this one (keeps job ids unique). */
  generation: number;
  enableMemory: boolean;
  /** `options.enable_emoji` of the job that handed the lock over (absent in older jobs: on). */
  enableEmoji?: boolean;
}

export function isSweep(data: unknown): data is SweepJobData {
  return typeof data === 'object' && data !== null && (data as { sweep?: unknown }).sweep === true;
}

const SWEEP_OPTIONS: JobsOptions = {
  priority: 5,
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
};

/** Enqueues the stream's next pass, due in `delayMs`, in the tenant's heartflow queue. */
export async function scheduleSweep(
  queues: TenantQueues,
  data: SweepJobData,
  delayMs: number,
): Promise<void> {
  await queues.queue(data.tenantId, 'heartflow').add('sweep', data, {
    ...SWEEP_OPTIONS,
    delay: delayMs,
    // One job per hand-over: a new holder has a new token, an adopted lock the next generation.
    jobId: `sweep.${data.lockToken}.${data.generation}`,
  });
  await queues.announce(data.tenantId, 'heartflow');
}

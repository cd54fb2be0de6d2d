import type { LlmCallObservation } from '../llm/llmClient';
import type { Dispatcher, JobRun } from '../queues/dispatcher';
import { SEP, type TelemetryRecorder } from '../telemetry/telemetryRecorder';

/**
 * What the worker pool reports to the shared telemetry: every job's queue wait and run time (for
 * `/stats/performance` and the job histograms of `/metrics`), every LLM call (calls, tokens,
 * latency by provider and model) and the dispatchers' counters, as installation-wide totals.
 */

/** `onJob` of the dispatchers: per tenant and for the installation, by kind and outcome. */
export function jobTelemetry(recorder: TelemetryRecorder): (run: JobRun) => void {
  return (run) => {
    const outcome = run.ok ? 'ok' : 'failed';
    recorder.observe('job', [run.kind, outcome, 'wait'].join(SEP), run.queueWaitMs, run.tenantId);
    recorder.observe('job', [run.kind, outcome, 'run'].join(SEP), run.processingMs, run.tenantId);
    recorder.totalLatency('job', [run.kind, outcome, 'run'].join(SEP), run.processingMs);
    recorder.totalLatency('job', [run.kind, 'wait'].join(SEP), run.queueWaitMs);
  };
}

/** `onCall` of the LLM client: requests by status, tokens and latency per provider and model. */
export function llmTelemetry(recorder: TelemetryRecorder): (call: LlmCallObservation) => void {
  return (call) => {
    const pm = [call.provider, call.modelName];
    recorder.total('llm', [...pm, call.status, 'requests'].join(SEP));
    if (call.promptTokens) recorder.total('llm', [...pm, 'prompt', 'tokens'].join(SEP), call.promptTokens);
    if (call.completionTokens) {
      recorder.total('llm', [...pm, 'completion', 'tokens'].join(SEP), call.completionTokens);
    }
    recorder.totalLatency('llm-latency', pm.join(SEP), call.latencyMs);
    recorder.observe('llm', [call.provider, call.status].join(SEP), call.latencyMs);
  };
}

/** Adds the growth of each dispatcher's counters to the installation totals every `everyMs`. */
export function pumpDispatcherCounters(
  recorder: TelemetryRecorder,
  dispatchers: readonly Dispatcher[],
  everyMs = 1000,
): () => void {
  const last = new Map<Dispatcher, Record<string, number>>();
  const pump = () => {
    for (const d of dispatchers) {
      const before = last.get(d) ?? {};
      const now = { ...d.counters } as Record<string, number>;
      for (const [name, value] of Object.entries(now)) {
        const delta = value - (before[name] ?? 0);
        if (delta > 0) recorder.total('dispatcher', [d.kind, name].join(SEP), delta);
      }
      last.set(d, now);
    }
  };
  const timer = setInterval(pump, everyMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    pump();
  };
}

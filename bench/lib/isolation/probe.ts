/**
 * Preloaded (`--import`) into every MaiHive process `bench:isolation` starts: observes, changes
 * nothing. Each second it reports over IPC this process's CPU time and event-loop delay (p99 and
 * max of the second, from `monitorEventLoopDelay`); on `probe-phase` it starts a new phase
 * histogram, on `probe-report` it answers with that phase's figures. Without an IPC channel (the
 * process was not forked by the bench) it does nothing.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface ProbeTick {
  type: 'probe-tick';
  pid: number;
  at: number;
  /** CPU time used in the second, µs (user + system). */
  cpu_us: number;
  el_p99_ms: number;
  el_max_ms: number;
  rss_bytes: number;
}

export interface ProbeReport {
  type: 'probe-report';
  pid: number;
  phase: string;
  cpu_us: number;
  wall_ms: number;
  el_p50_ms: number;
  el_p99_ms: number;
  el_max_ms: number;
  rss_bytes: number;
}

type ProbeRequest = { type: 'probe-phase'; phase: string } | { type: 'probe-report' };

if (process.send) {
  const send = process.send.bind(process);
  const resolution = 10;
  const second = monitorEventLoopDelay({ resolution });
  const phase = monitorEventLoopDelay({ resolution });
  second.enable();
  phase.enable();
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const cpuUs = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  let lastCpu = cpuUs();
  let phaseName = 'start';
  let phaseCpu = lastCpu;
  let phaseStart = Date.now();
  const timer = setInterval(() => {
    const cpu = cpuUs();
    const tick: ProbeTick = {
      type: 'probe-tick',
      pid: process.pid,
      at: Date.now(),
      cpu_us: cpu - lastCpu,
      el_p99_ms: ms(second.percentile(99)),
      el_max_ms: ms(second.max),
      rss_bytes: process.memoryUsage().rss,
    };
    lastCpu = cpu;
    second.reset();
    send(tick);
  }, 1000);
  timer.unref();
  process.on('message', (m: ProbeRequest) => {
    if (m.type === 'probe-phase') {
      phaseName = m.phase;
      phaseCpu = cpuUs();
      phaseStart = Date.now();
      phase.reset();
    } else if (m.type === 'probe-report') {
      const report: ProbeReport = {
        type: 'probe-report',
        pid: process.pid,
        phase: phaseName,
        cpu_us: cpuUs() - phaseCpu,
        wall_ms: Date.now() - phaseStart,
        el_p50_ms: ms(phase.percentile(50)),
        el_p99_ms: ms(phase.percentile(99)),
        el_max_ms: ms(phase.max),
        rss_bytes: process.memoryUsage().rss,
      };
      send(report);
    }
  });
  // The channel must not keep a process alive that would otherwise exit.
  process.channel?.unref();
}

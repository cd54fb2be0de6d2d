import type pg from 'pg';

type Stream = NodeJS.WritableStream & NodeJS.EventEmitter;
const watched = new WeakSet<object>();

/**
 * Calls `onTurn` at every PostgreSQL round trip of `client` from now on: a turn begins each time
 * the client writes after it has read something (pg's pipeline mode writes a unit of work's
 * statements without waiting for their answers, so statements and round trips differ). Watching
 * a client twice counts it once.
 */
export function watchRoundTrips(client: pg.Client | pg.PoolClient, onTurn: () => void): void {
  if (watched.has(client)) return;
  watched.add(client);
  const stream = (client as unknown as { connection: { stream: Stream } }).connection.stream;
  let answered = true;
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = (...args: unknown[]) => {
    if (answered) onTurn();
    answered = false;
    return write(...args);
  };
  // Ahead of pg's own listener, which may write the next queued statement as it reads an answer.
  stream.prependListener('data', () => (answered = true));
}

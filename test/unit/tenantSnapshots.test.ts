import { TenantSnapshots } from '../../src/domain/tenantSnapshots';

function setup() {
  let now = 0;
  const loads: string[] = [];
  let release: (value: number) => void = () => undefined;
  let value = 1;
  const gated = { on: false };
  const snapshots = new TenantSnapshots<number>(
    (tenantId) => {
      loads.push(tenantId);
      if (!gated.on) return Promise.resolve(value);
      return new Promise<number>((resolve) => (release = resolve));
    },
    { clock: { now: () => now }, ttlMs: 1000, maxTenants: 2 },
  );
  return {
    snapshots,
    loads,
    gated,
    tick: (ms: number) => (now += ms),
    setValue: (v: number) => (value = v),
    release: (v: number) => release(v),
  };
}

describe('TenantSnapshots', () => {
  it('loads a tenant once per TTL and again after it', async () => {
    const s = setup();
    expect(await s.snapshots.get('a')).toBe(1);
    s.setValue(2);
    s.tick(999);
    expect(await s.snapshots.get('a')).toBe(1);
    s.tick(1);
    expect(await s.snapshots.get('a')).toBe(2);
    expect(s.loads).toEqual(['a', 'a']);
  });

  it('forget makes the next read load again', async () => {
    const s = setup();
    await s.snapshots.get('a');
    s.setValue(5);
    s.snapshots.forget('a');
    expect(await s.snapshots.get('a')).toBe(5);
    expect(s.loads).toEqual(['a', 'a']);
  });

  it('readers at the same moment share one load', async () => {
    const s = setup();
    s.gated.on = true;
    const both = Promise.all([s.snapshots.get('a'), s.snapshots.get('a')]);
    s.release(7);
    expect(await both).toEqual([7, 7]);
    expect(s.loads).toEqual(['a']);
  });

  it('a load under way when a change notice comes is answered but not kept', async () => {
    const s = setup();
    s.gated.on = true;
    const before = s.snapshots.get('a');
    s.snapshots.forget('a');
    s.release(1);
    expect(await before).toBe(1);
    s.gated.on = false;
    s.setValue(2);
    expect(await s.snapshots.get('a')).toBe(2);
    expect(s.loads).toEqual(['a', 'a']);
  });

  it('keeps at most maxTenants copies, dropping the oldest', async () => {
    const s = setup();
    await s.snapshots.get('a');
    await s.snapshots.get('b');
    await s.snapshots.get('c');
    await s.snapshots.get('c');
    await s.snapshots.get('b');
    expect(s.loads).toEqual(['a', 'b', 'c']);
    await s.snapshots.get('a');
    expect(s.loads).toEqual(['a', 'b', 'c', 'a']);
  });
});

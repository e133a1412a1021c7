// kube-proxy's sync timing, in virtual time: bursts batched into one sync, at most one sync per
// min-sync-period, and a periodic sync every sync-period without changes.
import t from 'tap'
import { SyncRunner, type SyncTrigger, type Timers } from '../../lib/watch/sync-runner.js'
import { Backoff } from '../../lib/watch/backoff.js'

/** A virtual clock with timers: advance(ms) fires what falls due, in order. */
function virtualTime() {
  let now = 0
  let seq = 0
  const pending = new Map<number, { at: number; fn: () => void }>()
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      pending.set(++seq, { at: now + ms, fn })
      return seq
    },
    clearTimeout: (h) => void pending.delete(h as number),
  }
  const advance = (ms: number) => {
    const end = now + ms
    for (let guard = 0; guard < 10_000; guard++) {
      const next = [...pending.entries()].sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0]
      if (next === undefined || next[1].at > end) break
      pending.delete(next[0])
      now = next[1].at
      next[1].fn()
    }
    now = end
  }
  return { timers, now: () => now, advance }
}

t.test('a burst of changes costs one sync; the next waits for min-sync-period', async (t) => {
  const vt = virtualTime()
  const runs: [number, SyncTrigger][] = []
  const r = new SyncRunner((trigger) => runs.push([vt.now(), trigger]), { minInterval: 1, maxInterval: 30, now: vt.now, timers: vt.timers })
  r.ran() // the initial sync, at 0
  r.start()
  vt.advance(200)
  for (let i = 0; i < 20; i++) r.request()
  vt.advance(700)
  t.same(runs, [], 'held back: the last sync was less than min-sync-period ago')
  vt.advance(100)
  t.same(runs, [[1000, 'change']], 'one sync for the whole burst, at lastRun + min-sync-period')
  vt.advance(5000)
  r.request()
  vt.advance(0)
  t.same(runs.at(-1), [6000, 'change'], 'a change long after the last sync runs at once')
  r.request()
  vt.advance(999)
  t.equal(runs.length, 2)
  vt.advance(1)
  t.same(runs.at(-1), [7000, 'change'])
  vt.advance(30_000)
  t.same(runs.at(-1), [37000, 'periodic'], 'a full sync every sync-period after the last one')
  r.stop()
  vt.advance(100_000)
  t.equal(runs.length, 4, 'nothing after stop()')
})

t.test('changes before start() sync as soon as it starts; bad periods are refused', async (t) => {
  const vt = virtualTime()
  const runs: SyncTrigger[] = []
  const r = new SyncRunner((trigger) => runs.push(trigger), { minInterval: 0, maxInterval: 10, now: vt.now, timers: vt.timers })
  r.request()
  vt.advance(1000)
  t.same(runs, [], 'not started')
  r.start()
  vt.advance(0)
  t.same(runs, ['change'])
  r.stop()
  t.throws(() => new SyncRunner(() => {}, { minInterval: 1, maxInterval: 0 }), RangeError)
})

t.test('backoff doubles up to its maximum and resets', async (t) => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 })
  t.same([b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000])
  b.reset()
  t.equal(b.next(), 100)
  const j = new Backoff({ initialMs: 100, jitter: 0.5, random: () => 1 })
  t.equal(j.next(), 150)
})

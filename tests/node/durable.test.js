'use strict'
// Durable subscriptions, queue groups, durable queue groups.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers')

let srv
before(async () => { srv = await h.startServer() })
after(async () => {
  await h.closeAll()
  if (srv) await srv.cleanup()
})

const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i)

test('durable resumes after the client closes and reconnects with the same id', h.withLogs(() => srv, async () => {
  const id = h.unique('dur')
  const ch = h.unique('dur.ch')
  const pub = await h.connect(srv, h.unique('dur-pub'))
  await h.publishAll(pub, ch, ['m1', 'm2', 'm3'])

  let sc = await h.connect(srv, id)
  const opts = () => sc.subscriptionOptions().setDeliverAllAvailable().setDurableName('dname')
  let c = await h.subscribe(sc, ch, opts())
  const first = await c.waitCount(3)
  assert.deepEqual(h.seqs(first), [1, 2, 3])
  // Auto-acks go out after each callback, before the close request on the same connection.
  assert.equal(await h.close(sc), null)

  await h.publishAll(pub, ch, ['m4', 'm5'])

  sc = await h.connect(srv, id)
  // The start position (deliver all) is ignored on resume: only what was not yet sent comes.
  c = await h.subscribe(sc, ch, opts())
  const resumed = await c.waitCount(2)
  assert.deepEqual(h.seqs(resumed), [4, 5], 'only the messages published while away')
  assert.deepEqual(resumed.map((m) => m.getData()), ['m4', 'm5'])
  assert.ok(resumed.every((m) => !m.isRedelivered()), 'acked messages are not redelivered')
  await h.publish(pub, ch, 'm6')
  const live = await c.waitCount(3)
  assert.deepEqual(h.seqs(live), [4, 5, 6])
  await h.close(sc)
  await h.close(pub)
}))

test('durable resume redelivers what was delivered but not acked', h.withLogs(() => srv, async () => {
  const id = h.unique('durpend')
  const ch = h.unique('durpend.ch')
  const pub = await h.connect(srv, h.unique('durpend-pub'))
  await h.publishAll(pub, ch, ['p1', 'p2', 'p3'])

  let sc = await h.connect(srv, id)
  const opts = () => sc.subscriptionOptions().setDeliverAllAvailable().setDurableName('dname')
    .setManualAckMode(true).setAckWait(30000)
  let c = new h.Collector(sc, ch, undefined, opts())
  c.onMessage = (m) => { if (m.getSequence() === 1) m.ack() } // 2 and 3 stay unacked
  await c.ready()
  await c.waitCount(3)
  assert.equal(await h.close(sc), null)

  sc = await h.connect(srv, id)
  c = new h.Collector(sc, ch, undefined, opts())
  c.onMessage = (m) => m.ack()
  await c.ready()
  const again = await c.waitCount(2)
  assert.deepEqual(h.seqs(again), [2, 3], 'the unacked ones, without waiting for the 30 s ack wait')
  assert.ok(again.every((m) => m.isRedelivered()), 'flagged as redelivered')
  await h.close(sc)
  await h.close(pub)
}))

test('queue group: each message goes to exactly one of two members', h.withLogs(() => srv, async () => {
  const ch = h.unique('q.ch')
  const s1 = await h.connect(srv, h.unique('q1'))
  const s2 = await h.connect(srv, h.unique('q2'))
  // Manual acks that the test sends only at the end: pending counts then drive the split.
  const qopts = (sc) => sc.subscriptionOptions().setManualAckMode(true).setAckWait(30000)
  const a = await h.subscribe(s1, ch, qopts(s1), 'workers')
  const b = await h.subscribe(s2, ch, qopts(s2), 'workers')
  const pub = await h.connect(srv, h.unique('q-pub'))
  const n = 20
  await h.publishAll(pub, ch, range(1, n).map((i) => `w${i}`))
  await h.waitAny([a, b], () => a.msgs.length + b.msgs.length >= n, 5000, `${n} messages across the group`)
  const all = h.seqs(a.msgs).concat(h.seqs(b.msgs)).sort((x, y) => x - y)
  assert.deepEqual(all, range(1, n), 'every sequence exactly once across the group')
  assert.ok(a.msgs.length > 0 && b.msgs.length > 0,
    `both members get a share (${a.msgs.length} / ${b.msgs.length})`)
  for (const c of [a, b]) {
    const s = h.seqs(c.msgs)
    assert.deepEqual(s, [...s].sort((x, y) => x - y), 'each member sees its share in order')
    assert.ok(c.msgs.every((m) => !m.isRedelivered()))
    c.msgs.forEach((m) => m.ack())
  }
  await Promise.all([h.close(s1), h.close(s2), h.close(pub)])
}))

test('durable queue group keeps its position when all members leave', h.withLogs(() => srv, async () => {
  const ch = h.unique('dq.ch')
  const pub = await h.connect(srv, h.unique('dq-pub'))
  await h.publishAll(pub, ch, ['d1', 'd2', 'd3'])

  const dqOpts = (sc) => sc.subscriptionOptions().setDeliverAllAvailable().setDurableName('dqdur')
  const m1 = await h.connect(srv, h.unique('dq-m1'))
  const m2 = await h.connect(srv, h.unique('dq-m2'))
  const a = await h.subscribe(m1, ch, dqOpts(m1), 'dqgroup')
  await a.waitCount(3) // first member of a new durable group: starts at the first message
  const b = await h.subscribe(m2, ch, dqOpts(m2), 'dqgroup')
  await h.publishAll(pub, ch, ['d4', 'd5', 'd6', 'd7'])
  await h.waitAny([a, b], () => a.msgs.length + b.msgs.length >= 7, 5000, 'd4..d7 across the group')
  const got = h.seqs(a.msgs).concat(h.seqs(b.msgs)).sort((x, y) => x - y)
  assert.deepEqual(got, range(1, 7), 'each message once across the durable group')
  // The joining member does not replay the group's history.
  assert.ok(h.seqs(b.msgs).every((s) => s >= 4), `second member got only new ones: ${h.seqs(b.msgs)}`)

  // All members leave (connection close: the durable group survives).
  await Promise.all([h.close(m1), h.close(m2)])
  await h.publishAll(pub, ch, ['d8', 'd9'])

  // A new member (another client id) picks up where the group left off.
  const m3 = await h.connect(srv, h.unique('dq-m3'))
  const c = await h.subscribe(m3, ch, dqOpts(m3), 'dqgroup')
  const resumed = await c.waitCount(2)
  assert.deepEqual(h.seqs(resumed), [8, 9], 'resumes after the last acked message')
  assert.deepEqual(resumed.map((m) => m.getData()), ['d8', 'd9'])
  assert.ok(resumed.every((m) => !m.isRedelivered()))
  await h.close(m3)
  await h.close(pub)
}))

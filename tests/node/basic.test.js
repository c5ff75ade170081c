'use strict'
// Connect/close, publish acks, and subscription start positions.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers')

let srv
before(async () => { srv = await h.startServer() })
after(async () => {
  await h.closeAll()
  if (srv) await srv.cleanup()
})

test('connect then close', h.withLogs(() => srv, async () => {
  const id = h.unique('conn')
  const sc = await h.connect(srv, id)
  assert.equal(sc.isClosed(), false)
  assert.ok(sc.pubPrefix, 'ConnectResponse carries a pubPrefix')
  assert.ok(sc.subRequests && sc.unsubRequests && sc.closeRequests && sc.subCloseRequests,
    'ConnectResponse carries the request subjects')
  const err = await h.close(sc)
  assert.equal(err, null, 'CloseResponse without error')
  assert.equal(sc.isClosed(), true)
  // The server forgot the client: the same id connects again at once.
  const again = await h.connect(srv, id)
  assert.equal(await h.close(again), null)
  assert.deepEqual(sc.errors, [])
}))

test('publish: ack callback gets the guid and no error', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('pub'))
  const ch = h.unique('pub.ch')
  const acked = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no PubAck within 5 s')), 5000)
    const guid = sc.publish(ch, 'hello', (err, ackGuid) => {
      clearTimeout(timer)
      resolve({ err, ackGuid, guid })
    })
  })
  assert.equal(acked.err, undefined, 'no error in the PubAck')
  assert.equal(typeof acked.ackGuid, 'string')
  assert.ok(acked.ackGuid.length > 0, 'non-empty guid')
  assert.equal(acked.ackGuid, acked.guid, 'the PubAck carries the guid publish() returned')
  // publish() returns the guid synchronously; the callback runs later with the same one.
  const g2 = await h.publish(sc, ch, Buffer.from([0, 1, 2, 255]))
  assert.ok(g2.length > 0)
  // Many at once: each ack matches its own publish.
  const guids = await h.publishAll(sc, ch, Array.from({ length: 50 }, (_, i) => `m${i}`))
  assert.equal(new Set(guids).size, 50)
  await h.close(sc)
}))

test('subscribe deliverAllAvailable: all messages in order with seq, data, timestamp', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('all'))
  const ch = h.unique('all.ch')
  const n = 20
  const t0 = Date.now()
  await h.publishAll(sc, ch, Array.from({ length: n }, (_, i) => `msg-${i + 1}`))
  const t1 = Date.now()
  const opts = sc.subscriptionOptions().setDeliverAllAvailable()
  const c = await h.subscribe(sc, ch, opts)
  const msgs = await c.waitCount(n)
  assert.deepEqual(h.seqs(msgs), Array.from({ length: n }, (_, i) => i + 1))
  let prevTs = 0
  msgs.forEach((m, i) => {
    assert.equal(m.getSubject(), ch)
    assert.equal(m.getData(), `msg-${i + 1}`)
    assert.equal(m.isRedelivered(), false)
    const ts = m.getTimestamp().getTime()
    // Server timestamps are wall-clock ns; same machine, so within the publish window (+-1 s slack).
    assert.ok(ts >= t0 - 1000 && ts <= t1 + 1000, `timestamp ${ts} outside [${t0}, ${t1}]`)
    assert.ok(m.getTimestampRaw() >= prevTs, 'timestamps never go backwards')
    prevTs = m.getTimestampRaw()
  })
  // A message published now is delivered live, as the next sequence.
  await h.publish(sc, ch, 'live')
  const all = await c.waitCount(n + 1)
  assert.equal(all[n].getSequence(), n + 1)
  assert.equal(all[n].getData(), 'live')
  assert.equal(all.length, n + 1)
  await h.close(sc)
}))

test('binary payload round trip', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('bin'), { stanEncoding: 'binary' })
  const ch = h.unique('bin.ch')
  const payload = Buffer.alloc(70000)
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff
  await h.publish(sc, ch, payload)
  await h.publish(sc, ch, Buffer.alloc(0))
  const c = await h.subscribe(sc, ch, sc.subscriptionOptions().setDeliverAllAvailable())
  const msgs = await c.waitCount(2)
  assert.ok(Buffer.from(msgs[0].getRawData()).equals(payload), '70000-byte payload intact')
  assert.equal(msgs[1].getRawData().length, 0)
  await h.close(sc)
}))

test('setStartAtSequence', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('seq'))
  const ch = h.unique('seq.ch')
  await h.publishAll(sc, ch, Array.from({ length: 10 }, (_, i) => `m${i + 1}`))
  const c = await h.subscribe(sc, ch, sc.subscriptionOptions().setStartAtSequence(5))
  const msgs = await c.waitCount(6)
  assert.deepEqual(h.seqs(msgs), [5, 6, 7, 8, 9, 10])
  assert.deepEqual(msgs.map((m) => m.getData()), ['m5', 'm6', 'm7', 'm8', 'm9', 'm10'])
  await h.close(sc)
}))

test('setStartWithLastReceived', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('last'))
  const ch = h.unique('last.ch')
  await h.publishAll(sc, ch, ['a', 'b', 'c', 'd', 'e'])
  const c = await h.subscribe(sc, ch, sc.subscriptionOptions().setStartWithLastReceived())
  await c.waitCount(1)
  await h.publish(sc, ch, 'f')
  const msgs = await c.waitCount(2)
  assert.deepEqual(h.seqs(msgs), [5, 6])
  assert.deepEqual(msgs.map((m) => m.getData()), ['e', 'f'])
  await h.close(sc)
}))

test('default start position is new-only', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('new'))
  const ch = h.unique('new.ch')
  await h.publishAll(sc, ch, ['old1', 'old2'])
  const c = await h.subscribe(sc, ch, sc.subscriptionOptions())
  await h.publish(sc, ch, 'new3')
  const msgs = await c.waitCount(1)
  assert.equal(msgs[0].getSequence(), 3)
  assert.equal(msgs[0].getData(), 'new3')
  await h.close(sc)
}))

test('setStartTime and setStartAtTimeDelta', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('time'))
  const ch = h.unique('time.ch')
  await h.publishAll(sc, ch, ['a1', 'a2', 'a3'])
  // A time gap between two batches is what these start positions select on, so here (and only
  // here) the test waits a fixed time: it makes the gap, it does not wait for an event.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const boundary = Date.now()
  await new Promise((resolve) => setTimeout(resolve, 300))
  await h.publishAll(sc, ch, ['b4', 'b5'])

  // Timestamps straddle the boundary.
  const all = await h.subscribe(sc, ch, sc.subscriptionOptions().setDeliverAllAvailable())
  const msgs = await all.waitCount(5)
  assert.ok(msgs[2].getTimestamp().getTime() < boundary, 'a3 stamped before the boundary')
  assert.ok(msgs[3].getTimestamp().getTime() >= boundary, 'b4 stamped after the boundary')

  const byTime = await h.subscribe(sc, ch, sc.subscriptionOptions().setStartTime(new Date(boundary)))
  const bt = await byTime.waitCount(2)
  assert.deepEqual(h.seqs(bt), [4, 5])
  assert.deepEqual(bt.map((m) => m.getData()), ['b4', 'b5'])

  const byDelta = await h.subscribe(sc, ch, sc.subscriptionOptions().setStartAtTimeDelta(Date.now() - boundary))
  const bd = await byDelta.waitCount(2)
  assert.deepEqual(h.seqs(bd), [4, 5])

  // A delta reaching before the first message replays everything.
  const wide = await h.subscribe(sc, ch, sc.subscriptionOptions().setStartAtTimeDelta(3600 * 1000))
  const w = await wide.waitCount(5)
  assert.deepEqual(h.seqs(w), [1, 2, 3, 4, 5])

  // New messages still arrive live on a time-started subscription, after the replayed ones.
  await h.publish(sc, ch, 'c6')
  const bt2 = await byTime.waitCount(3)
  assert.deepEqual(h.seqs(bt2), [4, 5, 6])
  await h.close(sc)
}))

'use strict'
// kill -9 of stanzad, then a restart on the same --dir: every acked message is still there.
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers')

let srv
after(async () => {
  await h.closeAll()
  if (srv) await srv.cleanup()
})

// Publishes 'sentinel' after the restart and reads the channel from the start up to it.
async function readBack (server, ch) {
  const sc = await h.connect(server, h.unique('reader'))
  const sentinelGuid = await h.publish(sc, ch, 'sentinel')
  assert.ok(sentinelGuid)
  const c = await h.subscribe(sc, ch, sc.subscriptionOptions().setDeliverAllAvailable())
  await c.waitUntil(() => c.msgs.length > 0 && c.msgs[c.msgs.length - 1].getData() === 'sentinel', 10000,
    () => `the sentinel after the recovered messages (got ${c.msgs.length})`)
  await h.close(sc)
  return c.msgs
}

test('kill -9 then restart on the same --dir keeps every acked message, in order', h.withLogs(() => srv, async (t) => {
  srv = await h.startServer({ store: 'FILE' })
  const ch = h.unique('crash.ch')
  const durableCh = h.unique('crash.settled')

  // Phase 1: messages fully acked well before the crash.
  const pub = await h.connect(srv, h.unique('crash-pub'))
  const settled = Array.from({ length: 100 }, (_, i) => `s${i}`)
  await h.publishAll(pub, durableCh, settled)

  // Phase 2: a stream of publishes with a window of `window` unacked ones, so that many are in
  // flight when the server is killed. Acks received before the kill are the ones the server has
  // promised to keep.
  const total = 5000
  const window = 300
  const killAfter = 1000
  const pad = '.'.repeat(200)
  const acked = new Set()
  let killed = false
  let next = 0
  let killSent, streamFailed
  const killedPromise = new Promise((resolve, reject) => { killSent = resolve; streamFailed = reject })
  const pubClosed = h.once(pub, 'close', 15000, 'publisher noticing the server is gone', false)
  pubClosed.catch(() => {}) // awaited below; this only keeps an early failure from being unhandled
  const publishNext = () => {
    const i = next++
    pub.publish(ch, `b${i}` + pad, (err) => {
      if (killed) return // acks after the kill (including the client's own close-time callbacks) do not count
      if (err) {
        killed = true
        streamFailed(new Error(`PubAck error for b${i} before the kill: ${err}`))
        return
      }
      acked.add(i)
      if (acked.size >= killAfter) {
        killed = true
        killSent(srv.signalNow('SIGKILL'))
        return
      }
      if (next < total) publishNext()
    })
  }
  for (let k = 0; k < window; k++) publishNext()
  // Resolves with the exit status once the killed server is gone.
  const ex = await h.withTimeout(killedPromise, 20000, `${killAfter} PubAcks of the stream, then stanzad's exit`)
  assert.equal(ex.signal, 'SIGKILL')
  await pubClosed

  // Restart on the same dir (same port and log).
  await srv.start()

  const recovered = await readBack(srv, ch)
  const seqList = h.seqs(recovered)
  assert.deepEqual(seqList, Array.from({ length: seqList.length }, (_, i) => i + 1),
    'sequences are 1..N with no gap, and the new message continues after the last recovered one')
  const data = recovered.slice(0, -1).map((m) => m.getData())
  const idx = data.map((d) => {
    assert.match(d, /^b\d+\.*$/, 'only messages that were published')
    return parseInt(d.slice(1), 10)
  })
  for (let i = 1; i < idx.length; i++) {
    assert.ok(idx[i] > idx[i - 1], `publish order kept: b${idx[i - 1]} then b${idx[i]}`)
  }
  const have = new Set(idx)
  const missing = [...acked].filter((i) => !have.has(i)).sort((a, b) => a - b)
  assert.deepEqual(missing, [], `acked messages lost by the crash (acked ${acked.size}, recovered ${idx.length})`)

  t.diagnostic(`stream: ${next} published, ${acked.size} acked before the kill, ${idx.length} recovered`)

  const settledBack = await readBack(srv, durableCh)
  assert.deepEqual(settledBack.map((m) => m.getData()), settled.concat(['sentinel']))
  assert.deepEqual(h.seqs(settledBack), Array.from({ length: 101 }, (_, i) => i + 1))
  const ts = settledBack.map((m) => m.getTimestampRaw())
  for (let i = 1; i < ts.length; i++) assert.ok(ts[i] >= ts[i - 1], 'recovered timestamps in order')
}))

test('kill -9 then restart: a durable subscription keeps its acked position', h.withLogs(() => srv, async () => {
  // A durable receives (and auto-acks) d1..d3, then its client closes cleanly: the close is
  // handled after the acks that preceded it on the connection, and answered only once that state
  // is committed. Then the server is killed. After the restart the durable must resume at d4:
  // the durable still exists (it is resumed with a new-only start position, which a forgotten
  // durable would apply, skipping d4) and its acked messages do not come back.
  srv = srv || await h.startServer({ store: 'FILE' })
  const ch = h.unique('crash.dur')
  const id = h.unique('crash-dur')
  let sc = await h.connect(srv, id)
  await h.publishAll(sc, ch, ['d1', 'd2', 'd3'])
  let c = await h.subscribe(sc, ch, sc.subscriptionOptions().setDeliverAllAvailable().setDurableName('cd'))
  assert.deepEqual(h.seqs(await c.waitCount(3)), [1, 2, 3])
  assert.equal(await h.close(sc), null)
  await srv.kill9()
  await srv.start()

  const pub = await h.connect(srv, h.unique('crash-dur-pub'))
  await h.publish(pub, ch, 'd4')
  sc = await h.connect(srv, id)
  c = await h.subscribe(sc, ch, sc.subscriptionOptions().setDurableName('cd')) // new-only
  await h.publish(pub, ch, 'd5')
  const got = await c.waitUntil(() => c.msgs.some((m) => m.getData() === 'd5'), 5000, 'd5 on the resumed durable')
  assert.deepEqual(h.seqs(got), [4, 5], 'resumes right after the acked d3; d4 (published while away) is not skipped')
  assert.ok(got.every((m) => !m.isRedelivered()))
  await h.close(sc)
  await h.close(pub)
}))

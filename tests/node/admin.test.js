'use strict'
// The /admin/ operations of the monitoring port while node-nats-streaming clients are live: pause
// and resume of a queue group, purge under a subscriber holding unacked messages, requeue of a
// dead letter back to the worker, and every call refused without the token.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const h = require('./helpers')

const TOKEN = 'node-admin-token-0123456789'
let srv, confDir, mport

before(async () => {
  confDir = h.mkTempDir('stanza-node-conf-')
  const conf = path.join(confDir, 'server.conf')
  fs.writeFileSync(conf, `admin_token: "${TOKEN}"\n` +
    "store_limits:\n  channels:\n    'poison.*': {max_deliveries: 2}\n")
  mport = await h.freePort()
  srv = await h.startServer({ args: ['-c', conf, '-m', String(mport)] })
})
after(async () => {
  await h.closeAll()
  if (srv) await srv.cleanup()
  if (confDir) h.removeDir(confDir)
})

// One HTTP request to the monitoring port: { status, body (parsed JSON) }.
async function http (method, pathQuery, token = TOKEN) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {}
  const r = await fetch(`http://127.0.0.1:${mport}${pathQuery}`, { method, headers })
  const text = await r.text()
  return { status: r.status, body: text ? JSON.parse(text) : null }
}

async function admin (method, pathQuery) {
  const r = await http(method, pathQuery)
  assert.equal(r.status, 200, `${method} ${pathQuery}: ${JSON.stringify(r.body)}`)
  return r.body
}

// The pendingz row of a channel's queue group (or subscription), polled until pred holds.
async function waitRow (channel, pred, what, ms = 5000) {
  const deadline = Date.now() + ms
  let row
  for (;;) {
    const r = await http('GET', `/streaming/pendingz?channel=${encodeURIComponent(channel)}`)
    row = r.status === 200 ? r.body.pending[0] : undefined
    if (row && pred(row)) return row
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(row)}`)
    await new Promise((resolve) => setTimeout(resolve, 20)) // poll interval
  }
}

test('pause holds a queue group\'s deliveries, resume releases them', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('pause'))
  const ch = h.unique('jobs')
  const opts = sc.subscriptionOptions().setManualAckMode(true).setAckWait(60000)
  const w = await h.subscribe(sc, ch, opts, 'workers')
  w.onMessage = (m) => m.ack()
  const p = await admin('POST', `/admin/pause?channel=${ch}&queue=workers`)
  assert.equal(p.paused, true)
  assert.equal(p.subscriptions, 1)
  await h.publishAll(sc, ch, ['a', 'b', 'c'])
  // Stored and waiting, nothing in flight: the group is held, not slow.
  const row = await waitRow(ch, (r) => r.backlog_msgs === 3, 'a backlog of 3')
  assert.equal(row.inflight_msgs, 0)
  assert.equal(row.is_paused, true)
  assert.equal(w.msgs.length, 0)
  const r = await admin('POST', `/admin/resume?channel=${ch}&queue=workers`)
  assert.equal(r.paused, false)
  await w.waitCount(3)
  assert.deepEqual(w.msgs.map((m) => m.getData()), ['a', 'b', 'c'])
  await waitRow(ch, (x) => x.pending_msgs === 0 && x.is_paused === false, 'everything acked')
  await h.close(sc)
}))

test('purge under a live subscriber drops its unacked messages, the next one flows', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('purge'))
  const ch = h.unique('jobs')
  const opts = sc.subscriptionOptions().setManualAckMode(true).setAckWait(60000)
  const s = await h.subscribe(sc, ch, opts)
  await h.publishAll(sc, ch, ['1', '2', '3'])
  await s.waitCount(3)
  await waitRow(ch, (r) => r.inflight_msgs === 3, '3 unacked')
  const p = await admin('POST', `/admin/purge?channel=${ch}`)
  assert.equal(p.purged, 3)
  assert.equal(p.msgs, 0)
  assert.equal(p.first_seq, 4)
  assert.equal(p.last_seq, 3)
  // The purged messages are no longer the subscriber's to ack (never redelivered).
  const row = await waitRow(ch, (r) => r.pending_msgs === 0, 'nothing pending after the purge')
  assert.equal(row.inflight_msgs, 0)
  await h.publishAll(sc, ch, ['4'])
  await s.waitCount(4)
  assert.equal(s.msgs[3].getSequence(), 4)
  assert.equal(s.msgs[3].getData(), '4')
  await h.close(sc)
}))

test('a dead letter requeued reaches the worker again', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('requeue'))
  const ch = `poison.${process.pid}`
  const opts = sc.subscriptionOptions().setManualAckMode(true).setAckWait(1000).setMaxInFlight(1)
  let fixed = false // the worker fails the job until "the bug is fixed"
  const w = new h.Collector(sc, ch, 'workers', opts)
  w.onMessage = (m) => { if (fixed) m.ack() }
  await w.ready()
  await h.publishAll(sc, ch, ['job'])
  await w.waitCount(2, 8000) // delivered max_deliveries (2) times, never acked
  let dead
  const deadline = Date.now() + 5000
  for (;;) {
    dead = await admin('GET', `/admin/dead?channel=${ch}`)
    if (dead.total === 1 || Date.now() > deadline) break
    await new Promise((resolve) => setTimeout(resolve, 20)) // poll interval
  }
  assert.equal(dead.total, 1)
  assert.equal(dead.dead_letter, `${ch}.dead`)
  const d = dead.dead[0]
  assert.equal(d.origin_sequence, 1)
  assert.equal(d.deliveries, 2)
  assert.equal(d.requeued_sequence, 0)
  fixed = true
  const r = await admin('POST', `/admin/requeue?channel=${ch}&seq=${d.sequence}`)
  assert.equal(r.requeued, 1)
  await w.waitCount(3)
  const again = w.msgs[2]
  assert.equal(again.getData(), 'job')
  assert.equal(again.getSequence(), 2) // a new message on the origin channel
  assert.equal(again.isRedelivered(), false)
  const after = await admin('GET', `/admin/dead?channel=${ch}`)
  assert.equal(after.dead[0].requeued_sequence, 2)
  await waitRow(ch, (x) => x.pending_msgs === 0, 'the requeued job acked')
  await h.close(sc)
}))

test('every admin call is refused without the right token, and changes nothing', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('token'))
  const ch = h.unique('jobs')
  await h.publishAll(sc, ch, ['x', 'y'])
  const calls = [['POST', `/admin/purge?channel=${ch}`], ['DELETE', `/admin/channel?channel=${ch}&force=true`],
    ['GET', `/admin/msg?channel=${ch}&seq=1`], ['POST', `/admin/pause?channel=${ch}&queue=q`],
    ['PUT', '/admin/anything']]
  for (const [method, pq] of calls) {
    const none = await http(method, pq, null)
    assert.equal(none.status, 401, `${method} ${pq} without a token`)
    const wrong = await http(method, pq, TOKEN + 'x')
    assert.equal(wrong.status, 403, `${method} ${pq} with a wrong token`)
  }
  const c = await http('GET', `/streaming/channelsz?channel=${ch}`)
  assert.equal(c.status, 200)
  assert.equal(c.body.msgs, 2)
  await h.close(sc)
}))

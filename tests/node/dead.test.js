'use strict'
// max_deliveries and dead letters (store_limits, per channel), as an unmodified client sees them:
// a message never acked is delivered max_deliveries times, then goes to the dead-letter channel
// ("<channel>.dead") while the next messages flow to the same subscriber.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const h = require('./helpers')

let srv, confDir
before(async () => {
  confDir = h.mkTempDir('stanza-node-conf-')
  const conf = path.join(confDir, 'server.conf')
  fs.writeFileSync(conf, "store_limits:\n  channels:\n    'jobs.*': {max_deliveries: 2}\n")
  srv = await h.startServer({ args: ['-c', conf] })
})
after(async () => {
  await h.closeAll()
  if (srv) await srv.cleanup()
  if (confDir) h.removeDir(confDir)
})

test('a poison message goes to the dead-letter channel after max_deliveries, the next ones flow', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('dead'))
  const ch = `jobs.${process.pid}`
  // One at a time (MaxInflight 1), AckWait 1 s; everything but the poison is acked.
  const opts = sc.subscriptionOptions().setDeliverAllAvailable().setManualAckMode(true)
    .setAckWait(1000).setMaxInFlight(1)
  const c = new h.Collector(sc, ch, undefined, opts)
  c.onMessage = (m) => { if (m.getData() !== 'poison') m.ack() }
  await c.ready()
  await h.publishAll(sc, ch, ['poison', 'next1', 'next2'])
  const msgs = await c.waitCount(4, 8000)
  assert.deepEqual(msgs.map((m) => m.getData()), ['poison', 'poison', 'next1', 'next2'])
  assert.deepEqual(h.seqs(msgs), [1, 1, 2, 3])
  assert.equal(msgs[1].isRedelivered(), true)
  assert.equal(msgs[2].isRedelivered(), false)
  // The dead letter: the same payload, a message of "<channel>.dead".
  const dc = await h.subscribe(sc, `${ch}.dead`, sc.subscriptionOptions().setDeliverAllAvailable())
  const dead = await dc.waitCount(1, 5000)
  assert.equal(dead[0].getData(), 'poison')
  assert.equal(dead[0].getSequence(), 1)
  // Still one at a time: a later message gets through, and the poison never again.
  await h.publishAll(sc, ch, ['next3'])
  await c.waitCount(5, 5000)
  assert.deepEqual(c.msgs.map((m) => m.getData()).filter((d) => d === 'poison').length, 2)
  assert.equal(dc.msgs.length, 1)
  await h.close(sc)
}))

'use strict'
// redelivery_backoff (store_limits, per channel): the wait before a redelivery is the larger of
// the subscription's AckWait and the channel's backoff entry, as an unmodified client sees it.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { performance } = require('node:perf_hooks')
const h = require('./helpers')

let srv, confDir
before(async () => {
  confDir = h.mkTempDir('stanza-node-conf-')
  const conf = path.join(confDir, 'server.conf')
  fs.writeFileSync(conf, "store_limits:\n  channels:\n    'slow.*': {redelivery_backoff: [2s]}\n")
  srv = await h.startServer({ args: ['-c', conf] })
})
after(async () => {
  await h.closeAll()
  if (srv) await srv.cleanup()
  if (confDir) h.removeDir(confDir)
})

// Subscribes with AckWait 1 s, never acking; each message's arrival on the monotonic clock.
async function unacked (sc, ch) {
  const opts = sc.subscriptionOptions().setDeliverAllAvailable().setManualAckMode(true).setAckWait(1000)
  const c = new h.Collector(sc, ch, undefined, opts)
  const at = []
  c.onMessage = () => at.push(performance.now())
  await c.ready()
  return { c, at }
}

test('a channel with redelivery_backoff [2s] redelivers after 2 s, not after AckWait', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('backoff'))
  const slowCh = `slow.${process.pid}`
  const plainCh = h.unique('plain')
  const slow = await unacked(sc, slowCh)
  const plain = await unacked(sc, plainCh)
  await h.publishAll(sc, slowCh, ['job'])
  await h.publishAll(sc, plainCh, ['job'])
  const msgs = await slow.c.waitCount(2, 6000)
  await plain.c.waitCount(2, 6000)
  assert.deepEqual(h.seqs(msgs.slice(0, 2)), [1, 1])
  assert.equal(msgs[1].isRedelivered(), true)
  const slowGap = slow.at[1] - slow.at[0]
  const plainGap = plain.at[1] - plain.at[0]
  assert.ok(slowGap >= 1900, `backoff [2s]: redelivered after ${slowGap} ms`)
  assert.ok(plainGap >= 900 && plainGap < 1800, `no backoff: redelivered after ${plainGap} ms`)
  await h.close(sc)
}))

'use strict'
// discard: new (store_limits, per channel): a full channel refuses publishes with a PubAck error
// that the client hands to its publish callback, and evicts nothing.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const h = require('./helpers')

let srv, confDir
before(async () => {
  confDir = h.mkTempDir('stanza-node-conf-')
  const conf = path.join(confDir, 'server.conf')
  fs.writeFileSync(conf, "store_limits:\n  channels:\n    'full.*': {max_msgs: 3, discard: new}\n")
  srv = await h.startServer({ args: ['-c', conf] })
})
after(async () => {
  await h.closeAll()
  if (srv) await srv.cleanup()
  if (confDir) h.removeDir(confDir)
})

// Publishes and resolves with the error string the client's callback got ('' = acked).
function publishResult (sc, subject, data) {
  const p = new Promise((resolve) => {
    sc.publish(subject, data, (err) => resolve(err ? String(err) : ''))
  })
  return h.withTimeout(p, 5000, `PubAck for ${subject}`)
}

test('a full channel with discard: new refuses publishes', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('discard'))
  const ch = `full.${process.pid}`
  const full = `channel "${ch}" is full (max_msgs 3)`
  // Sent without waiting between them: three are stored, the others refused.
  const results = await Promise.all([1, 2, 3, 4, 5].map((i) => publishResult(sc, ch, `job-${i}`)))
  assert.deepEqual(results, ['', '', '', full, full])
  assert.equal(await publishResult(sc, ch, 'job-6'), full)
  // Nothing was evicted: a reader from the start gets the first three.
  const c = await h.subscribe(sc, ch, sc.subscriptionOptions().setDeliverAllAvailable())
  const msgs = await c.waitCount(3)
  assert.deepEqual(h.seqs(msgs), [1, 2, 3])
  assert.deepEqual(msgs.map((m) => m.getData()), ['job-1', 'job-2', 'job-3'])
  // A channel the entry does not match keeps NSS's behaviour (no limit hit here).
  assert.equal(await publishResult(sc, h.unique('other'), 'x'), '')
  await h.close(sc)
}))

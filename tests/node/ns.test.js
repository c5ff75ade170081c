'use strict'
// stanzad over an external NATS (-ns): Debian's nats-server carries the traffic, node clients
// connect to it, and stanzad is one more client of it. A durable queue group gets every message
// and resumes across a redeploy of stanzad while the clients stay connected to NATS; a second
// stanzad with the same cluster id is refused.
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')
const h = require('./helpers')

const NATS_SERVER = process.env.NATS_SERVER || '/usr/sbin/nats-server'

// A nats-server on a free port; resolves once it accepts.
async function startNats () {
  const port = await h.freePort()
  const dir = h.mkTempDir('stanza-node-nats-')
  const log = path.join(dir, 'nats.log')
  const proc = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-l', log],
    { stdio: 'ignore' })
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  const deadline = Date.now() + 10000
  const net = require('node:net')
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port })
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (ok) break
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop () {
      proc.kill('SIGTERM')
      await h.withTimeout(exited, 10000, 'nats-server to exit')
      h.removeDir(dir)
    }
  }
}

// Waits until the channel's subscriptions have nothing unacknowledged (monitoring: in -ns mode
// srv.port is the monitoring port), so that a stop cannot race acks still in flight.
async function waitAcked (ch) {
  const deadline = Date.now() + 10000
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${srv.port}/streaming/channelsz?channel=${ch}&subs=1`)
    const body = await res.json()
    const subs = body.subscriptions || []
    if (subs.length > 0 && subs.every((s) => s.pending_count === 0)) return
    if (Date.now() > deadline) throw new Error(`acks not processed: ${JSON.stringify(body)}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

let nats, srv, other
after(async () => {
  await h.closeAll()
  if (other) await other.cleanup().catch(() => {})
  if (srv) await srv.cleanup()
  if (nats) await nats.stop()
})

test('-ns: a durable queue group gets every message and resumes across a stanzad redeploy', h.withLogs(() => srv, async () => {
  nats = await startNats()
  srv = await h.startServer({ ns: nats.url, store: 'FILE' })
  const ch = h.unique('ns.jobs')
  const pub = await h.connect(srv, h.unique('ns-pub'))
  const worker = await h.connect(srv, h.unique('ns-worker'))
  const opts = () => worker.subscriptionOptions().setDeliverAllAvailable().setDurableName('d')
    .setManualAckMode(true)
  const c = await h.subscribe(worker, ch, opts(), 'workers')
  c.onMessage = (m) => m.ack()
  await h.publishAll(pub, ch, ['j1', 'j2', 'j3'])
  const first = await c.waitCount(3)
  assert.deepEqual(first.map((m) => m.getData()), ['j1', 'j2', 'j3'])
  await waitAcked(ch)

  // The redeploy: stanzad stops and starts on its store; the clients never leave NATS.
  await srv.stop()
  await srv.start()
  await h.publishAll(pub, ch, ['j4', 'j5'])
  const all = await c.waitCount(5)
  assert.deepEqual(all.slice(3).map((m) => m.getData()), ['j4', 'j5'])
  assert.deepEqual(h.seqs(all), [1, 2, 3, 4, 5])
}))

test('-ns: a second stanzad with the same cluster id on that NATS is refused', h.withLogs(() => srv, async () => {
  other = new h.Server({ ns: nats.url })
  await assert.rejects(other.start(), /exited during start/)
  const log = fs.readFileSync(other.log, 'utf8')
  assert.match(log, /discovered another streaming server with cluster ID "test-cluster"/)
  await other.cleanup().catch(() => {})
  other = null
  // The first one serves on.
  const sc = await h.connect(srv, h.unique('ns-after'))
  assert.ok(await h.publish(sc, h.unique('ns.after'), 'x'))
}))

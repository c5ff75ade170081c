'use strict'
// Fast hand-over (handover_grace): a queue member's process is killed (SIGKILL: no close, its
// TCP connection just drops) while it holds a job under an AckWait of 10 minutes. The other
// member gets the job, flagged redelivered, once the grace is over and within a second of it,
// as an unmodified node-nats-streaming client sees it.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')
const readline = require('node:readline')
const { performance } = require('node:perf_hooks')
const h = require('./helpers')

const GRACE_MS = 2000
let srv
before(async () => {
  srv = await h.startServer({ args: ['--handover_grace', `${GRACE_MS}ms`] })
})
after(async () => {
  await h.closeAll()
  if (srv) await srv.cleanup()
})

// The worker as a child process; lines() resolves once a line of its output satisfies pred.
function startWorker (clientID, channel, group) {
  const child = spawn(process.execPath, [path.join(__dirname, 'handover-worker.js'), srv.url, clientID, channel, group],
    { stdio: ['ignore', 'pipe', 'inherit'] })
  const seen = []
  const waiters = []
  readline.createInterface({ input: child.stdout }).on('line', (l) => {
    seen.push(l)
    for (const w of waiters.splice(0)) if (!w()) waiters.push(w)
  })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  function line (pred, ms, what) {
    const p = new Promise((resolve) => {
      const w = () => { const l = seen.find(pred); if (l) resolve(l); return !!l }
      if (!w()) waiters.push(w)
    })
    return h.withTimeout(p, ms, `worker output: ${what} (got: ${JSON.stringify(seen)})`)
  }
  return { child, line, exited }
}

test('a killed worker\'s job reaches the other member after handover_grace, not after AckWait', h.withLogs(() => srv, async () => {
  const channel = h.unique('jobs')
  const w = startWorker(h.unique('worker'), channel, 'workers')
  try {
    await w.line((l) => l === 'ready', 5000, 'ready')
    const pc = await h.connect(srv, h.unique('pub'))
    await h.publish(pc, channel, 'job1')
    await w.line((l) => l === 'got 1 false', 5000, 'the job')

    const sc = await h.connect(srv, h.unique('survivor'))
    const opts = sc.subscriptionOptions().setAckWait(10 * 60 * 1000)
    const other = await h.subscribe(sc, channel, opts, 'workers')
    assert.equal(other.msgs.length, 0)

    const t0 = performance.now()
    w.child.kill('SIGKILL')
    assert.equal((await w.exited).signal, 'SIGKILL')
    const msgs = await other.waitCount(1, Math.max(1, GRACE_MS + 1000 - (performance.now() - t0)))
    const took = performance.now() - t0
    assert.equal(msgs[0].getSequence(), 1)
    assert.equal(msgs[0].getData(), 'job1')
    assert.equal(msgs[0].isRedelivered(), true)
    assert.ok(took >= GRACE_MS - 100, `handed over ${took} ms after the kill, before the grace`)
    // New jobs go to the member that is there.
    await h.publish(pc, channel, 'job2')
    assert.deepEqual(h.seqs(await other.waitCount(2, 5000)), [1, 2])
    await h.close(sc)
    await h.close(pc)
  } finally {
    w.child.kill('SIGKILL')
  }
}))

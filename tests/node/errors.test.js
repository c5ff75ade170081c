'use strict'
// Error strings the client surfaces, exactly as NSS sends them.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers')

let srv
before(async () => { srv = await h.startServer() })
after(async () => {
  await h.closeAll()
  if (srv) await srv.cleanup()
})

const INVALID_CLIENT_ID = 'stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed'

test('invalid clientID is rejected with the NSS error string', h.withLogs(() => srv, async () => {
  for (const id of ['bad id', 'bad.id', 'bad*', 'bad!']) {
    await assert.rejects(h.connect(srv, id), (e) => {
      assert.equal(e.message, INVALID_CLIENT_ID, `clientID ${JSON.stringify(id)}`)
      return true
    })
  }
  // The server is still fine, and valid ids with - and _ work.
  const sc = await h.connect(srv, h.unique('ok_id-A9'))
  await h.close(sc)
}))

test('duplicate durable registration', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('dupdur'))
  const ch = h.unique('dupdur.ch')
  const opts = () => sc.subscriptionOptions().setDurableName('dd')
  const first = await h.subscribe(sc, ch, opts())
  const second = new h.Collector(sc, ch, undefined, opts())
  const err = await h.once(second.sub, 'error', 5000, 'the duplicate durable error')
  assert.equal(err.message, 'stan: duplicate durable registration')
  // The first subscription is unaffected.
  await h.publish(sc, ch, 'still-there')
  const msgs = await first.waitCount(1)
  assert.equal(msgs[0].getData(), 'still-there')
  assert.equal(second.msgs.length, 0)
  await h.close(sc)
}))

test('clientID already registered for a second live connection', h.withLogs(() => srv, async () => {
  const id = h.unique('dupid')
  const ch = h.unique('dupid.ch')
  const first = await h.connect(srv, id)
  await assert.rejects(h.connect(srv, id), (e) => {
    assert.equal(e.message, 'stan: clientID already registered')
    return true
  })
  // The live first connection keeps working.
  const c = await h.subscribe(first, ch, first.subscriptionOptions())
  await h.publish(first, ch, 'after-dup')
  assert.equal((await c.waitCount(1))[0].getData(), 'after-dup')
  assert.deepEqual(first.errors, [])
  await h.close(first)
}))

test('a dead connection with the same clientID is replaced', h.withLogs(() => srv, async () => {
  const id = h.unique('replace')
  const first = await h.connect(srv, id)
  // Drop the TCP connection without the STAN close protocol: the server still has the client
  // registered, but nobody answers its heartbeat inbox any more.
  const closed = h.once(first, 'close', 5000, 'first connection closed', false)
  h.forceClose(first)
  await closed
  const second = await h.connect(srv, id)
  await h.publish(second, h.unique('replace.ch'), 'x')
  await h.close(second)
}))

test('subscribe to an invalid subject is rejected', h.withLogs(() => srv, async () => {
  const sc = await h.connect(srv, h.unique('badsubj'))
  for (const subj of ['foo.*', 'foo.>', 'foo..bar']) {
    const c = new h.Collector(sc, subj, undefined, sc.subscriptionOptions())
    const err = await h.once(c.sub, 'error', 5000, `the invalid subject error for ${subj}`)
    assert.equal(err.message, 'stan: invalid subject', `subject ${subj}`)
  }
  await h.close(sc)
}))

'use strict'
// TLS on the client port with node-nats-streaming (its NATS options carry `tls`). The CA,
// server and client certificates are made here with the openssl CLI.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const h = require('./helpers')

let dir
const f = (name) => path.join(dir, name)

function openssl (...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

function makeCert (name, cn, ext) {
  fs.writeFileSync(f(`${name}.ext`), ext)
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem',
    '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`)
}

before(() => {
  dir = h.mkTempDir('stanza-node-tls-')
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Stanza Test CA')
  makeCert('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  makeCert('client', 'stanza-node-client', 'extendedKeyUsage=clientAuth\n')
})
after(async () => {
  await h.closeAll()
  if (dir) h.removeDir(dir)
})

async function pubSubRoundTrip (srv, tls) {
  const sc = await h.connect(srv, h.unique('tls'), { tls })
  const ch = h.unique('tls.ch')
  await h.publishAll(sc, ch, ['a', 'b', 'c'])
  const c = await h.subscribe(sc, ch, sc.subscriptionOptions().setDeliverAllAvailable())
  const msgs = await c.waitCount(3)
  assert.deepEqual(msgs.map((m) => m.getData()), ['a', 'b', 'c'])
  assert.equal(await h.close(sc), null)
}

test('TLS: publish and subscribe over TLS', async () => {
  const srv = await new h.Server({ args: ['--tls', '--tlscert', f('server.pem'), '--tlskey', f('server-key.pem')] }).start()
  try {
    await pubSubRoundTrip(srv, { ca: [fs.readFileSync(f('ca.pem'))] })
  } finally {
    await srv.cleanup()
  }
})

test('TLS: --tlsverify takes a client with a certificate and refuses one without', async () => {
  const srv = await new h.Server({
    args: ['--tlsverify', '--tlscert', f('server.pem'), '--tlskey', f('server-key.pem'),
      '--tlscacert', f('ca.pem')]
  }).start()
  try {
    await pubSubRoundTrip(srv, {
      ca: [fs.readFileSync(f('ca.pem'))],
      cert: fs.readFileSync(f('client.pem')),
      key: fs.readFileSync(f('client-key.pem'))
    })
    await assert.rejects(h.connect(srv, h.unique('nocert'), { tls: { ca: [fs.readFileSync(f('ca.pem'))] } }))
  } finally {
    await srv.cleanup()
  }
})

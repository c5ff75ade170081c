'use strict'
// A backoff channel with a large in-flight set: N messages delivered and left unacked
// (AckWait 1 s, redelivery_backoff [1s, 60s]: redelivered once at 1 s, then waiting 60 s), then
// N new messages delivered while those N wait: each new one is due before all of them.
// Prints the server's CPU seconds (utime+stime from /proc) for the second batch's delivery.
// With one list sorted by insertion each new delivery stepped past the N waiting: O(N^2).
// usage: node bench/backoff_inflight.js STANZAD [N (20000)]
const path = require('node:path')
const fs = require('node:fs')
const os = require('node:os')
const net = require('node:net')
const { spawn } = require('node:child_process')
// The interop tests' pinned client (tests/node/run.sh installs it).
const stan = require(path.join(__dirname, '..', 'tests', 'node', 'node_modules', 'node-nats-streaming'))

const [stanzad, nArg] = process.argv.slice(2)
const N = Number(nArg || 20000)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bbench-'))
const conf = path.join(dir, 'server.conf')
fs.writeFileSync(conf, "store_limits:\n  channels:\n    'jobs': {redelivery_backoff: [1s, 60s]}\n")

function freePort () {
  return new Promise((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) }) })
}
// The process's user + system CPU seconds (/proc/PID/stat fields 14 and 15, in 1/100 s ticks).
function cpu (pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main () {
  const port = await freePort()
  const srv = spawn(stanzad, ['-a', '127.0.0.1', '-p', String(port), '-c', conf, '--store', 'FILE', '--dir', path.join(dir, 'data'), '--file_sync=false', '-l', path.join(dir, 'log')], { stdio: 'ignore' })
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => { const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true) }); c.on('error', () => resolve(false)) })
    if (ok) break
    await sleep(100)
  }
  const guard = setTimeout(() => { console.error('timed out'); srv.kill('SIGTERM'); process.exit(1) }, 90000)
  process.on('exit', () => srv.kill('SIGTERM'))
  const sc = stan.connect('test-cluster', 'bbench', { url: `nats://127.0.0.1:${port}`, maxPubAcksInflight: 16384 })
  await new Promise((resolve, reject) => { sc.on('connect', resolve); sc.on('error', reject) })
  const opts = sc.subscriptionOptions().setDeliverAllAvailable().setManualAckMode(true).setAckWait(1000).setMaxInFlight(65536)
  let fresh = 0; let again = 0
  const sub = sc.subscribe('jobs', opts)
  sub.on('message', (m) => { if (m.isRedelivered()) again++; else fresh++ })
  await new Promise((resolve) => sub.on('ready', resolve))
  const publish = async (n) => { for (let k = 0; k < n; k += 10000) await publishSome(Math.min(10000, n - k)) }
  const publishSome = (n) => new Promise((resolve, reject) => {
    let acked = 0
    const payload = Buffer.alloc(128, 'x')
    for (let i = 0; i < n; i++) sc.publish('jobs', payload, (err) => { if (err) reject(err); else if (++acked === n) resolve() })
  })
  const until = async (cond) => { while (!cond()) await sleep(5) }
  await publish(N)
  await until(() => fresh >= N)
  await until(() => again >= N) // redelivered once (1 s), now waiting 60 s
  const c0 = cpu(srv.pid); const t0 = process.hrtime.bigint()
  await publish(N)
  await until(() => fresh >= 2 * N)
  const c1 = cpu(srv.pid); const t1 = process.hrtime.bigint()
  console.log(`RESULT n=${N} second_batch_server_cpu_s=${(c1 - c0).toFixed(2)} second_batch_wall_s=${(Number(t1 - t0) / 1e9).toFixed(2)} redelivered=${again}`)
  clearTimeout(guard)
  sc.close()
  srv.kill('SIGTERM')
  await sleep(300)
  fs.rmSync(dir, { recursive: true, force: true })
  process.exit(0)
}
main().catch((e) => { console.error(e); process.exit(1) })

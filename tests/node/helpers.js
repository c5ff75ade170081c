'use strict'
// Helpers for the node-nats-streaming interop tests: run a real stanzad, talk to it with the
// real client. Nothing here sleeps a fixed time to wait for something: every wait is on an event
// (or a polled condition) with a deadline.
//
// $STANZAD names the server binary (run.sh passes the CMake target's path).

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const stan = require('node-nats-streaming')

const CLUSTER_ID = 'test-cluster'
const START_TIMEOUT_MS = 10000
const STOP_TIMEOUT_MS = 10000
const DEFAULT_TIMEOUT_MS = 5000

function stanzadPath () {
  const p = process.env.STANZAD
  if (!p) throw new Error('STANZAD is not set: it must name the stanzad binary')
  if (!fs.existsSync(p)) throw new Error(`STANZAD=${p} does not exist`)
  return p
}

// How many times stanzad's log says it is ready (0 when there is no log yet).
function readyLines (file) {
  try {
    return fs.readFileSync(file, 'utf8').split('Streaming Server is ready').length - 1
  } catch (e) {
    return 0
  }
}

// A loopback TCP port that was free a moment ago.
function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function mkTempDir (prefix = 'stanza-node-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

function removeDir (dir) {
  fs.rmSync(dir, { recursive: true, force: true })
}

// Rejects with an error naming what timed out, unless p settles first.
function withTimeout (p, ms, what) {
  let timer
  const t = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

// Resolves with the first argument of `event` on emitter; rejects on `error` (if rejectOnError)
// or after ms.
function once (emitter, event, ms = DEFAULT_TIMEOUT_MS, what = event, rejectOnError = true) {
  let onEv, onErr
  const p = new Promise((resolve, reject) => {
    onEv = (v) => resolve(v)
    onErr = (e) => reject(e instanceof Error ? e : new Error(String(e)))
    emitter.once(event, onEv)
    if (rejectOnError && event !== 'error') emitter.once('error', onErr)
  })
  return withTimeout(p, ms, what).finally(() => {
    emitter.removeListener(event, onEv)
    if (onErr) emitter.removeListener('error', onErr)
  })
}

// True once something accepts a TCP connection on 127.0.0.1:port.
function portAccepts (port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { s.destroy(); resolve(false) })
  })
}

function logTail (file, lines = 40) {
  try {
    const all = fs.readFileSync(file, 'utf8').split('\n')
    return all.slice(-lines - 1).join('\n')
  } catch (e) {
    return `(cannot read ${file}: ${e.message})`
  }
}

// A stanzad process in its own temp dir. opts: store ('MEMORY' | 'FILE'; FILE puts the store
// in <dir>/data), args (extra flags).
class Server {
  constructor (opts = {}) {
    this.store = opts.store || 'MEMORY'
    this.extraArgs = opts.args || []
    // With ns (a NATS URL), stanzad runs over that external NATS (-ns): it has no client port;
    // port is then its monitoring port, which opens once the engine is ready, and clients
    // connect to the NATS URL.
    this.ns = opts.ns || null
    this.dir = mkTempDir()
    this.dataDir = path.join(this.dir, 'data')
    this.log = path.join(this.dir, 'stanzad.log')
    this.out = path.join(this.dir, 'stanzad.out')
    this.port = 0
    this.proc = null
    this.exit = null // { code, signal } of the last exit
  }

  get url () { return this.ns || `nats://127.0.0.1:${this.port}` }

  args () {
    const a = ['-a', '127.0.0.1', this.ns ? '-m' : '-p', String(this.port), '-cid', CLUSTER_ID,
      '-l', this.log, '-SDV', '--store', this.store]
    if (this.store !== 'MEMORY') a.push('--dir', this.dataDir)
    if (this.ns) a.push('-ns', this.ns)
    return a.concat(this.extraArgs)
  }

  // Starts (or restarts, on the same port, dir and log) and waits until the port accepts.
  async start () {
    if (this.proc) throw new Error('server already running')
    if (!this.port) this.port = await freePort()
    // In -ns mode the (monitoring) port opens late, so a port picked free may meanwhile be
    // another test's: stanzad's own ready line must be in its log too.
    const readyBefore = readyLines(this.log)
    const outFd = fs.openSync(this.out, 'a')
    const proc = spawn(stanzadPath(), this.args(), { stdio: ['ignore', outFd, outFd] })
    fs.closeSync(outFd)
    this.proc = proc
    this.lastPid = proc.pid
    this.exit = null
    this.unexpectedExit = null
    proc.exitPromise = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exit = { code, signal }
        if (!proc.signalled) this.unexpectedExit = { code, signal, at: new Date().toISOString() }
        if (this.proc === proc) this.proc = null
        resolve(this.exit)
      })
    })
    proc.once('error', (e) => { this.spawnError = e })
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      if (this.exit || this.spawnError) {
        throw new Error(`stanzad exited during start (${JSON.stringify(this.exit || String(this.spawnError))})\n` +
          this.describe())
      }
      if (await portAccepts(this.port) && (!this.ns || readyLines(this.log) > readyBefore)) return this
      if (Date.now() > deadline) {
        throw new Error(`stanzad did not accept connections on ${this.port} within ${START_TIMEOUT_MS} ms\n` +
          this.describe())
      }
      await new Promise((resolve) => setTimeout(resolve, 20)) // poll interval
    }
  }

  get pid () { return this.proc ? this.proc.pid : 0 }

  // Sends sig and waits for the exit (SIGKILL after STOP_TIMEOUT_MS). Returns {code, signal}.
  async signalAndWait (sig) {
    const proc = this.proc
    if (!proc) {
      if (this.unexpectedExit) throw new Error(`stanzad was not running: ${this.exitNote()}\n${this.describe()}`)
      return this.exit
    }
    proc.signalled = sig
    process.kill(proc.pid, sig)
    try {
      return await withTimeout(proc.exitPromise, STOP_TIMEOUT_MS, `stanzad (pid ${proc.pid}) to exit after ${sig}`)
    } catch (e) {
      process.kill(proc.pid, 'SIGKILL')
      await proc.exitPromise
      throw new Error(`${e.message}; it was SIGKILLed\n${this.describe()}`)
    }
  }

  // Graceful stop; throws if the exit was not a clean one.
  async stop () {
    const r = await this.signalAndWait('SIGTERM')
    if (r && !(r.code === 0 || r.code === 143 || r.signal === 'SIGTERM')) {
      throw new Error(`stanzad exited with ${JSON.stringify(r)} after SIGTERM\n${this.describe()}`)
    }
    return r
  }

  // Sends sig at once, without waiting (for use inside a callback); the exit is then expected.
  // Returns a promise of the exit status ({code, signal}).
  signalNow (sig) {
    const proc = this.proc
    if (!proc) throw new Error('stanzad is not running')
    proc.signalled = sig
    process.kill(proc.pid, sig)
    return proc.exitPromise
  }

  // kill -9: the store is left as a crash leaves it.
  async kill9 () {
    return this.signalAndWait('SIGKILL')
  }

  exitNote () {
    const u = this.unexpectedExit
    return u ? `stanzad (pid ${this.lastPid}) EXITED UNEXPECTEDLY at ${u.at}: code ${u.code}, signal ${u.signal}` : ''
  }

  describe (lines = 40) {
    const note = this.unexpectedExit ? `*** ${this.exitNote()} ***\n` : ''
    return note + `--- stanzad log ${this.log} (last ${lines} lines) ---\n${logTail(this.log, lines)}\n` +
      `--- stanzad stdout/stderr ${this.out} ---\n${logTail(this.out, 10)}`
  }

  // Stops if running; removes the temp dir unless keep is set (or STANZA_KEEP_TMP=1). Throws if
  // the server had died on its own (then the dir is kept, for its log).
  async cleanup (keep = false) {
    let err = null
    try {
      if (this.proc || this.unexpectedExit) await this.stop()
    } catch (e) {
      err = e
    }
    if (err || keep || process.env.STANZA_KEEP_TMP === '1') {
      process.stderr.write(`kept stanzad dir ${this.dir}\n`)
    } else {
      removeDir(this.dir)
    }
    if (err) throw err
  }
}

async function startServer (opts) {
  const s = new Server(opts)
  try {
    await s.start()
  } catch (e) {
    await s.cleanup(true).catch(() => {})
    throw e
  }
  return s
}

// Every client opened through connect(), so that closeAll() leaves nothing to keep node alive.
const liveClients = new Set()

// Connects and resolves once the STAN connect handshake is done. Rejects with the server's error
// (node-nats-streaming emits it as a string) or on timeout. Reconnection is off: a test must see
// a server failure, not have it papered over.
function connect (server, clientID, opts = {}) {
  const sc = stan.connect(CLUSTER_ID, clientID, Object.assign({
    url: server.url,
    reconnect: false,
    connectTimeout: 2000
  }, opts))
  sc.errors = []
  sc.on('error', (e) => sc.errors.push(e)) // never let an 'error' event crash the process
  liveClients.add(sc)
  sc.once('close', () => liveClients.delete(sc))
  const p = new Promise((resolve, reject) => {
    sc.once('connect', () => resolve(sc))
    sc.once('error', (e) => reject(e instanceof Error ? e : new Error(String(e))))
    sc.once('close', () => reject(new Error(`connection for ${clientID} closed before connect`)))
  })
  return withTimeout(p, DEFAULT_TIMEOUT_MS, `STAN connect of ${clientID}`).catch((e) => {
    forceClose(sc)
    throw e
  })
}

// Closes cleanly (CloseRequest/CloseResponse). Resolves with the close error (null if none).
function close (sc, ms = DEFAULT_TIMEOUT_MS) {
  if (sc.isClosed()) return Promise.resolve(null)
  const p = new Promise((resolve) => sc.once('close', (err) => resolve(err || null)))
  sc.close()
  return withTimeout(p, ms, `close of ${sc.clientID}`)
}

// Drops the TCP connection without the STAN close protocol, as a crashed client would. With
// reconnection off, the client then closes itself (its 'close' event fires).
function forceClose (sc) {
  if (sc.pingTimer) {
    clearTimeout(sc.pingTimer)
    delete sc.pingTimer
  }
  if (sc.nc && sc.nc.stream) {
    try { sc.nc.stream.destroy() } catch (_) {}
  }
  liveClients.delete(sc)
}

async function closeAll () {
  const all = [...liveClients]
  await Promise.all(all.map((sc) => close(sc, 2000).catch(() => forceClose(sc))))
  for (const sc of all) forceClose(sc)
}

// Publishes and resolves with the guid once the server has acked it; rejects on an ack error.
function publish (sc, subject, data, ms = DEFAULT_TIMEOUT_MS) {
  let guid
  const p = new Promise((resolve, reject) => {
    guid = sc.publish(subject, data, (err, ackGuid) => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)))
      else resolve(ackGuid)
    })
  })
  return withTimeout(p, ms, `PubAck for ${subject}`).then((ackGuid) => {
    if (ackGuid !== guid) throw new Error(`PubAck guid ${ackGuid} != published guid ${guid}`)
    return guid
  })
}

// Publishes every item (in order, without waiting between them) and waits for all the acks.
function publishAll (sc, subject, datas, ms = DEFAULT_TIMEOUT_MS) {
  return Promise.all(datas.map((d) => publish(sc, subject, d, ms)))
}

// A subscription plus the queue of messages it received. Created synchronously so that no
// message can arrive before the listener is attached.
class Collector {
  constructor (sc, subject, qGroup, opts) {
    this.msgs = []
    this.errors = []
    this.waiters = []
    this.sub = qGroup ? sc.subscribe(subject, qGroup, opts) : sc.subscribe(subject, opts)
    this.sub.on('message', (m) => {
      m.receivedAt = Date.now()
      this.msgs.push(m)
      if (this.onMessage) this.onMessage(m)
      this.waiters = this.waiters.filter((w) => !w())
    })
    this.sub.on('error', (e) => this.errors.push(e))
  }

  ready (ms = DEFAULT_TIMEOUT_MS) {
    return once(this.sub, 'ready', ms, `subscription ready on ${this.sub.subject}`)
  }

  // Resolves once at least n messages have been received (all of them, in arrival order).
  waitCount (n, ms = DEFAULT_TIMEOUT_MS) {
    return this.waitUntil(() => this.msgs.length >= n, ms, `${n} messages on ${this.sub.subject} (got ${this.msgs.length})`)
  }

  // Resolves once pred() holds (checked on each message).
  waitUntil (pred, ms, what) {
    if (pred()) return Promise.resolve(this.msgs)
    const p = new Promise((resolve) => {
      this.waiters.push(() => { if (pred()) { resolve(this.msgs); return true } return false })
    })
    return withTimeout(p, ms, typeof what === 'function' ? what() : what).catch((e) => {
      e.message += ` (received ${this.msgs.length}: seqs ${this.msgs.map((m) => m.getSequence()).join(',')})`
      throw e
    })
  }
}

// Resolves once pred() holds, checked on every message of any of the collectors (for queue groups,
// where the members' messages together make the total).
function waitAny (collectors, pred, ms, what) {
  if (pred()) return Promise.resolve()
  let done = false
  const p = new Promise((resolve) => {
    const w = () => {
      if (done) return true
      if (pred()) { done = true; resolve(); return true }
      return false
    }
    for (const c of collectors) c.waiters.push(w)
  })
  return withTimeout(p, ms, typeof what === 'function' ? what() : what).catch((e) => {
    done = true
    e.message += ` (received: ${collectors.map((c) => '[' + seqs(c.msgs).join(',') + ']').join(' + ')})`
    throw e
  })
}

// Subscribes and waits for the server's reply. opts is a SubscriptionOptions.
async function subscribe (sc, subject, opts, qGroup) {
  const c = new Collector(sc, subject, qGroup, opts)
  await c.ready()
  return c
}

// Wraps a test body so that a failure carries the tail of each server's log.
function withLogs (servers, fn) {
  return async (t) => {
    try {
      await fn(t)
    } catch (e) {
      const list = typeof servers === 'function' ? servers() : servers
      for (const s of [].concat(list)) {
        if (s) e.message += '\n' + s.describe()
      }
      throw e
    }
  }
}

function seqs (msgs) {
  return msgs.map((m) => m.getSequence())
}

let uniq = 0
// A name unique within this process (channels, durables, client ids).
function unique (prefix) {
  uniq++
  return `${prefix}-${process.pid}-${uniq}`
}

module.exports = {
  CLUSTER_ID,
  stan,
  Server,
  startServer,
  freePort,
  mkTempDir,
  removeDir,
  withTimeout,
  once,
  connect,
  close,
  forceClose,
  closeAll,
  publish,
  publishAll,
  subscribe,
  Collector,
  waitAny,
  withLogs,
  seqs,
  unique,
  logTail
}

'use strict'
// A worker for handover.test.js, run as a child process: a queue subscriber with ManualAck and an
// AckWait of 10 minutes (slow jobs) that never acks. It prints "ready" once subscribed and
// "got <seq> <redelivered>" for each message, until it is killed.
// usage: node handover-worker.js URL CLIENT_ID CHANNEL GROUP
const stan = require('node-nats-streaming')

const [url, clientID, channel, group] = process.argv.slice(2)
const sc = stan.connect('test-cluster', clientID, { url, reconnect: false })
sc.on('error', (e) => { console.log(`error ${e}`); process.exit(1) })
sc.on('connect', () => {
  const opts = sc.subscriptionOptions().setManualAckMode(true).setAckWait(10 * 60 * 1000)
  const sub = sc.subscribe(channel, group, opts)
  sub.on('error', (e) => { console.log(`error ${e}`); process.exit(1) })
  sub.on('ready', () => console.log('ready'))
  sub.on('message', (m) => console.log(`got ${m.getSequence()} ${m.isRedelivered()}`))
})

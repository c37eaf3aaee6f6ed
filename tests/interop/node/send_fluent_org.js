'use strict';
// Send events to a Forward server with @fluent-org/logger (fluent-logger-forward-node).
// Usage: node send_fluent_org.js '<json spec>'
// spec: {host, port, eventMode, ack: bool, ackTimeout, tls: {caFile}, deadlineMs,
//        security: {clientHostname, sharedKey, username, password},
//        events: [{label, record, time: int | [seconds, nanoseconds]}]}
// Prints one JSON line per emit ({"event": "sent"|"failed", "i"}), per socket
// error ({"event": "client_error"}), then {"event": "done"}.
const fs = require('fs');
const {FluentClient, EventTime} = require('@fluent-org/logger');

const spec = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const socket = {host: spec.host, port: spec.port, disableReconnect: true, timeout: 10000};
if (spec.tls) {
  socket.tls = {ca: fs.readFileSync(spec.tls.caFile)};
}
const options = {eventMode: spec.eventMode || 'PackedForward', socket, flushInterval: 20};
if (spec.ack) {
  options.ack = {ackTimeout: spec.ackTimeout || 5000};
}
if (spec.security) {
  options.security = spec.security;
}
const client = new FluentClient(null, options);
client.socketOn('error', (err) => out({event: 'client_error', name: err.name, message: err.message}));

let pending = spec.events.length;
let finished = false;
const finish = () => {
  if (finished) return;
  finished = true;
  out({event: 'done', pending});
  setTimeout(() => process.exit(0), 300).unref();
  client.shutdown().catch(() => {}).finally(() => process.exit(0));
};
setTimeout(finish, spec.deadlineMs || 5000);
// with reconnect disabled the client does not connect by itself
client.connect().catch(() => {});

spec.events.forEach((ev, i) => {
  // this client reads a number as milliseconds and sends integer seconds
  const time = Array.isArray(ev.time) ? new EventTime(ev.time[0], ev.time[1]) : ev.time * 1000;
  client.emit(ev.label, ev.record, time).then(
    () => out({event: 'sent', i}),
    (err) => out({event: 'failed', i, name: err.name, message: err.message}),
  ).finally(() => {
    pending -= 1;
    if (pending === 0) finish();
  });
});

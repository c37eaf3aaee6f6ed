'use strict';
// Send events to a Forward server with fluent-logger (fluent-logger-node).
// Usage: node send_fluent_logger.js '<json spec>'
// spec: {host, port, eventMode, requireAckResponse, ackResponseTimeout,
//        security: {clientHostname, sharedKey, username, password},
//        tls: {caFile}, deadlineMs,
//        events: [{label, record, time: int | [seconds, nanoseconds]}]}
// Prints one JSON line per emit callback ({"event": "sent"|"failed", "i"}),
// per client error ({"event": "client_error"}), then {"event": "done"}.
const fs = require('fs');
const {createFluentSender, EventTime} = require('fluent-logger');

const spec = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const quiet = {info() {}, error() {}, warn() {}, log() {}};

const options = {
  host: spec.host,
  port: spec.port,
  eventMode: spec.eventMode || 'Message',
  requireAckResponse: !!spec.requireAckResponse,
  ackResponseTimeout: spec.ackResponseTimeout || 5000,
  flushInterval: 20,
  enableReconnect: false,
  internalLogger: quiet,
};
if (spec.security) {
  options.security = spec.security;
}
if (spec.tls) {
  options.tls = true;
  options.tlsOptions = {ca: fs.readFileSync(spec.tls.caFile)};
}
const sender = createFluentSender(null, options);
sender.on('error', (err) => out({event: 'client_error', name: err.name, message: err.message}));

let pending = spec.events.length;
let finished = false;
const finish = () => {
  if (finished) return;
  finished = true;
  out({event: 'done', pending});
  sender.end(null, null, () => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
};
setTimeout(finish, spec.deadlineMs || 5000);

spec.events.forEach((ev, i) => {
  const time = Array.isArray(ev.time) ? new EventTime(ev.time[0], ev.time[1]) : ev.time;
  sender.emit(ev.label, ev.record, time, (err) => {
    pending -= 1;
    if (err) {
      out({event: 'failed', i, name: err.name, message: err.message});
    } else {
      out({event: 'sent', i});
    }
    if (pending === 0) {
      finish();
    }
  });
});

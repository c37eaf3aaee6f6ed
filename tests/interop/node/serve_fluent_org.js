'use strict';
// An independent Forward server: @fluent-org/logger's FluentServer.
// Usage: node serve_fluent_org.js '<json spec>'
// spec: {security: {serverHostname, sharedKey, authorize, userDict}, tls: {certFile, keyFile}}
// Prints {"event": "listening", "port"} once bound, then one line per entry
// received: {"event": "entry", tag, time: int | [seconds, nanoseconds], record}.
// Exits when its stdin closes.
const fs = require('fs');
const {FluentServer, EventTime} = require('@fluent-org/logger');

const spec = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const options = {listenOptions: {host: '127.0.0.1', port: 0}};
if (spec.security) {
  options.security = spec.security;
}
if (spec.tls) {
  options.tlsOptions = {cert: fs.readFileSync(spec.tls.certFile), key: fs.readFileSync(spec.tls.keyFile)};
}
const server = new FluentServer(options);
server.on('entry', (tag, time, record) => {
  const t = time instanceof EventTime ? [time.epoch, time.nano] : time;
  out({event: 'entry', tag, time: t, record});
});
server.listen().then(() => out({event: 'listening', port: server.port}));
process.stdin.on('end', () => {
  server.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
});
process.stdin.resume();

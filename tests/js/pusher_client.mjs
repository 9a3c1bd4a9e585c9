// Connects the real pusher-js client (what Laravel Echo uses) to a Pusher-protocol server on 127.0.0.1,
// subscribes to channels, and reports what happens as JSON lines on stdout, one object per line:
//   {"type":"connected","socket_id":"123.456"}
//   {"type":"subscribed","channel":"private-user.42"}
//   {"type":"subscription_error","channel":"...","error":{...}}   (the auth endpoint refused: HTTP status)
//   {"type":"error","error":{...}}                                (a connection-level error, e.g. pusher:error)
//   {"type":"event","channel":"...","event":"...","data":...}
//   {"type":"done"} then exit 0 after --events events, or {"type":"timeout"} then exit 2.
//
// Usage: node pusher_client.mjs --port 8000 --key app-key --token T --channel private-user.42
//                               [--channel ...] [--events 2] [--timeout-ms 15000]
import Pusher from 'pusher-js';

function parseArgs(argv) {
  const options = { channels: [], events: 1, timeoutMs: 15000, token: '' };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`missing value for ${name}`);
    if (name === '--port') options.port = Number(value);
    else if (name === '--key') options.key = value;
    else if (name === '--token') options.token = value;
    else if (name === '--channel') options.channels.push(value);
    else if (name === '--events') options.events = Number(value);
    else if (name === '--timeout-ms') options.timeoutMs = Number(value);
    else throw new Error(`unknown option ${name}`);
  }
  if (!options.port || !options.key || options.channels.length === 0) {
    throw new Error('--port, --key and at least one --channel are required');
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));
let finished = false;

function report(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

function finish(line, exitCode) {
  if (finished) return;
  finished = true;
  pusher.disconnect();
  // Exit only once the last line is flushed, so the reader never misses it.
  process.stdout.write(JSON.stringify(line) + '\n', () => process.exit(exitCode));
}

// pusher-js logs nothing unless asked; send its log to stderr so stdout stays machine-readable.
Pusher.log = (message) => process.stderr.write(`pusher-js: ${message}\n`);

const pusher = new Pusher(options.key, {
  cluster: 'mt1', // required by pusher-js 8, unused once wsHost is given
  wsHost: '127.0.0.1',
  wsPort: options.port,
  forceTLS: false,
  enabledTransports: ['ws'],
  channelAuthorization: {
    endpoint: `http://127.0.0.1:${options.port}/auth`,
    transport: 'ajax', // POSTs socket_id and channel_name form-encoded, as against Laravel's broadcasting/auth
    headers: { Authorization: `Bearer ${options.token}` },
  },
});

pusher.connection.bind('connected', () => report({ type: 'connected', socket_id: pusher.connection.socket_id }));
pusher.connection.bind('error', (error) => report({ type: 'error', error }));

let received = 0;
for (const name of options.channels) {
  const channel = pusher.subscribe(name);
  channel.bind('pusher:subscription_succeeded', () => report({ type: 'subscribed', channel: name }));
  channel.bind('pusher:subscription_error', (error) => report({ type: 'subscription_error', channel: name, error }));
  channel.bind_global((event, data) => {
    if (event.startsWith('pusher:')) return; // the client's own notifications, reported above
    report({ type: 'event', channel: name, event, data });
    received += 1;
    if (received >= options.events) finish({ type: 'done' }, 0);
  });
}

setTimeout(() => finish({ type: 'timeout' }, 2), options.timeoutMs);

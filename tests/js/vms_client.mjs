// Connects the real pusher-js client to the mock's VMS push socket the way a VMS app does: the socket's address
// comes from GET /api/v1/wsurl, the private channel is authorised at POST /api/v1/broadcasting/auth with the
// user's bearer token and VMS headers. Reports JSON lines on stdout, as pusher_client.mjs does:
//   {"type":"connected","socket_id":"123.456"}, {"type":"subscribed","channel":"..."},
//   {"type":"subscription_error",...}, {"type":"error",...}, {"type":"event","channel":...,"event":...,"data":...},
//   then {"type":"done"} (exit 0) after --events events, or {"type":"timeout"} (exit 2).
//
// Usage: node vms_client.mjs --host 127.0.0.1 --port 8080 --path /vms/ws --key K --auth-url URL
//                            --token 'Bearer ...' --channel private-user.13 [--events 3] [--timeout-ms 15000]
import Pusher from 'pusher-js';

function parseArgs(argv) {
  const options = { events: 1, timeoutMs: 15000 };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`missing value for ${name}`);
    const key = name.replace(/^--/, '').replace(/-([a-z])/g, (_, letter) => letter.toUpperCase());
    options[key] = ['port', 'events', 'timeoutMs'].includes(key) ? Number(value) : value;
  }
  for (const required of ['host', 'port', 'path', 'key', 'authUrl', 'token', 'channel']) {
    if (options[required] === undefined) throw new Error(`--${required} is required`);
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));
let finished = false;
const report = (line) => process.stdout.write(JSON.stringify(line) + '\n');

function finish(line, exitCode) {
  if (finished) return;
  finished = true;
  pusher.disconnect();
  process.stdout.write(JSON.stringify(line) + '\n', () => process.exit(exitCode));
}

Pusher.log = (message) => process.stderr.write(`pusher-js: ${message}\n`);

const pusher = new Pusher(options.key, {
  cluster: 'mt1', // required by pusher-js 8, unused once wsHost is given
  wsHost: options.host,
  wsPort: options.port,
  wsPath: options.path,
  forceTLS: false,
  enabledTransports: ['ws'],
  channelAuthorization: {
    endpoint: options.authUrl,
    transport: 'ajax',
    headers: { Authorization: options.token, 'X-Client': 'web', 'X-UUID': 'pusher-js-test', Accept: 'application/json' },
  },
});

pusher.connection.bind('connected', () => report({ type: 'connected', socket_id: pusher.connection.socket_id }));
pusher.connection.bind('error', (error) => report({ type: 'error', error }));

let received = 0;
const channel = pusher.subscribe(options.channel);
channel.bind('pusher:subscription_succeeded', () => report({ type: 'subscribed', channel: options.channel }));
channel.bind('pusher:subscription_error', (error) => report({ type: 'subscription_error', channel: options.channel, error }));
channel.bind_global((event, data) => {
  if (event.startsWith('pusher:')) return;
  report({ type: 'event', channel: options.channel, event, data });
  received += 1;
  if (received >= options.events) finish({ type: 'done' }, 0);
});

setTimeout(() => finish({ type: 'timeout' }, 2), options.timeoutMs);

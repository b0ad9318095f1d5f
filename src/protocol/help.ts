/** The HELP verb's answer (C7.2): for a person at nc/telnet; stock clients never send HELP. */
import { usage } from './ops.js';

const LINES: readonly [string, string][] = [
  [usage.PUB, 'publish <#bytes> of payload (on the next line) to <subject>'],
  [usage.HPUB, 'publish with a NATS/1.0 header block counted in <#header-bytes>'],
  [usage.SUB, 'subscribe; * matches one token, > the rest; <sid> is your name for it'],
  [usage.UNSUB, 'unsubscribe now, or after [max-msgs] more messages'],
  [usage.CONNECT, 'set options, e.g. CONNECT {"verbose":false}'],
  [usage.PING, 'the server answers PONG once everything before it is done'],
  [usage.HELP, 'this list'],
  [usage.SEND, 'store a message durably; answered +STORED <dest> <seq> <id>'],
  [usage.HSEND, 'SEND with a NATS/1.0 header block counted in <#header-bytes>'],
  [usage.PULL, 'take up to [batch] messages for <group>, waiting up to [wait]'],
  [usage.ACK, 'done with a pulled message'],
  [usage.NAK, 'deliver it again, now or after [delay]'],
  [usage.WIP, 'still working on it: restart its ack timer'],
  [usage.TERM, 'give up on it: it goes to the dead-letter destination'],
  [usage.CREATE, 'create a durable destination'],
  [usage.DESTS, 'list destinations with depth and consumer groups'],
  [usage.DROP, 'delete a consumer group (its acks and deliveries)'],
  [usage.OWNER, 'which node owns <destination>, and which hold its replicas'],
];

/** One help text, CRLF-terminated lines, each starting with '#'. */
export const HELP_TEXT: string = [
  '# SwarmMQ client protocol (NATS-compatible). Verbs are case-insensitive; end lines with Enter.',
  ...LINES.map(([u, what]) => `#   ${u}\r\n#       ${what}`),
  '# The payload goes on the line after PUB/SEND, exactly <#bytes> long (HPUB/HSEND: headers, then payload).',
  '# <dur> is milliseconds or 250ms, 5s, 2m. Specs: protocol/CLIENT.md, protocol/DURABLE.md',
  '',
].join('\r\n');

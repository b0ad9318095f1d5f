/**
 * The monitoring HTTP endpoints, in the style of nats-server's monitoring
 * port: `/healthz` (the process serves), `/readyz` (it can serve what it
 * owns: listening and, in a cluster, joined the mesh) and `/varz` (the
 * node's counters as JSON). Read-only, GET only, no secrets: what it shows
 * comes from the sources the node passes in.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { StartupError } from '../errors.js';
import type { Logger } from '../log.js';

export interface MonitorInit {
  readonly host: string;
  readonly port: number;
  readonly log: Logger;
  /** Whether the node can serve, and why not. */
  readonly readiness: () => { ready: boolean; why?: string };
  /** The `/varz` document: plain data, never a secret. */
  readonly varz: () => Record<string, unknown>;
}

/** A request that takes longer than this to send its head is dropped. */
const HEADERS_TIMEOUT_MS = 5000;
/** Monitoring connections at once: the endpoints are for a scraper and a person, not a crowd. */
const MAX_MONITOR_CONNECTIONS = 64;

export class MonitorServer {
  private readonly http: http.Server;
  private boundPort = 0;

  constructor(private readonly init: MonitorInit) {
    this.http = http.createServer((req, res) => this.handle(req, res));
    this.http.headersTimeout = HEADERS_TIMEOUT_MS;
    this.http.requestTimeout = HEADERS_TIMEOUT_MS;
    this.http.maxConnections = MAX_MONITOR_CONNECTIONS;
  }

  get port(): number {
    return this.boundPort;
  }

  async listen(): Promise<void> {
    const { host, port } = this.init;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const why =
          err.code === 'EADDRINUSE'
            ? 'is already in use (set monitor.port / --monitor-port)'
            : `: ${err.code ?? err.message}`;
        reject(
          new StartupError(
            err.code === 'EADDRINUSE' ? 'PORT_IN_USE' : 'BIND_FAILED',
            `monitoring port ${host}:${port} ${why}`,
          ),
        );
      };
      this.http.once('error', onError);
      this.http.listen({ host, port, exclusive: true }, () => {
        this.http.off('error', onError);
        resolve();
      });
    });
    this.boundPort = (this.http.address() as AddressInfo).port;
    this.http.on('error', (err) => this.init.log.error({ err: err.message }, 'monitoring listener error'));
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, { error: 'only GET' }, { allow: 'GET, HEAD' });
    }
    switch (path) {
      case '/healthz':
        return send(res, 200, { status: 'ok' });
      case '/readyz': {
        const r = this.init.readiness();
        return send(
          res,
          r.ready ? 200 : 503,
          r.ready ? { status: 'ready' } : { status: 'not ready', why: r.why },
        );
      }
      case '/varz':
        return send(res, 200, this.init.varz());
      default:
        return send(res, 404, {
          error: `no such endpoint ${path.slice(0, 64)}`,
          endpoints: ['/healthz', '/readyz', '/varz'],
        });
    }
  }
}

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

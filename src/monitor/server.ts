/**
 * The monitoring HTTP listener, in the style of nats-server's monitoring
 * port. It owns the HTTP side only (bind, limits, methods, 404s); what each
 * path shows comes from the endpoints the node passes in
 * (src/monitor/endpoints.ts). Read-only, GET only, no secrets.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { StartupError } from '../errors.js';
import type { Logger } from '../log.js';

/** What an endpoint answers: JSON (the default) or text such as Prometheus' format. */
export type EndpointReply =
  | { readonly status?: number; readonly json: unknown }
  | { readonly status?: number; readonly text: string; readonly contentType: string };

/** One path: the query string in, the reply out (may be async, e.g. a scrape). */
export type Endpoint = (query: URLSearchParams) => EndpointReply | Promise<EndpointReply>;

export interface MonitorInit {
  readonly host: string;
  readonly port: number;
  readonly log: Logger;
  /** Path ("/varz") to endpoint; listed in the 404 answer in this order. */
  readonly endpoints: ReadonlyMap<string, Endpoint>;
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
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    // A scraper's kept-alive connection would otherwise hold a stop for its idle timeout.
    this.http.closeAllConnections();
    await closed;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, { status: 405, json: { error: 'only GET' } }, { allow: 'GET, HEAD' });
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://monitor');
    } catch {
      // A request target URL cannot parse (`//[`): refused, never thrown out of the listener.
      return send(res, { status: 400, json: { error: 'bad request target' } });
    }
    const endpoint = this.init.endpoints.get(url.pathname);
    if (endpoint === undefined) {
      return send(res, {
        status: 404,
        json: {
          error: `no such endpoint ${url.pathname.slice(0, 64)}`,
          endpoints: [...this.init.endpoints.keys()],
        },
      });
    }
    Promise.resolve()
      .then(() => endpoint(url.searchParams))
      .then(
        (reply) => send(res, reply),
        (err: unknown) => {
          this.init.log.error({ path: url.pathname, err: String(err) }, 'monitoring endpoint failed');
          send(res, { status: 500, json: { error: 'internal error' } });
        },
      );
  }
}

function send(res: http.ServerResponse, reply: EndpointReply, headers: Record<string, string> = {}): void {
  const text = 'json' in reply ? `${JSON.stringify(reply.json, null, 2)}\n` : reply.text;
  res.writeHead(reply.status ?? 200, {
    'content-type': 'json' in reply ? 'application/json' : reply.contentType,
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/**
 * Query parameters of the JSON endpoints (protocol/MONITORING.md MON1.3,
 * MON1.4): each endpoint names the parameters it takes; an unknown, repeated,
 * too long or out-of-range one is refused with 400 and a JSON body naming the
 * parameter and the reason, before any work is done.
 */
import { MonitorQueryError } from '../errors.js';
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, MAX_PAGE_OFFSET, MAX_PARAM_CHARS } from './constants.js';
import type { Endpoint, EndpointReply } from './server.js';

/** Which slice of a list a request asked for (MON1.4). */
export interface Page {
  readonly offset: number;
  readonly limit: number;
}

const INTEGER = /^(0|[1-9][0-9]{0,15})$/;

/** A request's parameters, checked against the names an endpoint takes. */
export class Query {
  constructor(
    private readonly params: URLSearchParams,
    allowed: readonly string[],
  ) {
    for (const name of new Set(params.keys())) {
      if (!allowed.includes(name)) {
        const takes = allowed.length === 0 ? 'none' : allowed.join(', ');
        throw new MonitorQueryError(name.slice(0, 64), `unknown parameter (this endpoint takes: ${takes})`);
      }
      if (params.getAll(name).length > 1) throw new MonitorQueryError(name, 'given more than once');
      if (params.get(name)!.length > MAX_PARAM_CHARS) {
        throw new MonitorQueryError(name, `longer than ${MAX_PARAM_CHARS} characters`);
      }
    }
  }

  /** An integer in [min, max]; `fallback` when absent. */
  int(name: string, min: number, max: number, fallback: number): number {
    const raw = this.params.get(name);
    if (raw === null) return fallback;
    if (!INTEGER.test(raw)) throw new MonitorQueryError(name, `must be an integer, got ${clip(raw)}`);
    const n = Number(raw);
    if (n < min || n > max) throw new MonitorQueryError(name, `must be ${min}-${max}, got ${n}`);
    return n;
  }

  /** `1`/`true` or `0`/`false`; false when absent. */
  flag(name: string): boolean {
    const raw = this.params.get(name);
    if (raw === null || raw === '0' || raw === 'false') return false;
    if (raw === '1' || raw === 'true') return true;
    throw new MonitorQueryError(name, `must be 1 or 0, got ${clip(raw)}`);
  }

  /** One of `values`; `fallback` when absent. */
  choice<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const raw = this.params.get(name);
    if (raw === null) return fallback;
    if (!(values as readonly string[]).includes(raw)) {
      throw new MonitorQueryError(name, `must be one of ${values.join(', ')}, got ${clip(raw)}`);
    }
    return raw as T;
  }

  /** A non-empty text (its length already checked); undefined when absent. */
  text(name: string): string | undefined {
    const raw = this.params.get(name);
    if (raw === null) return undefined;
    if (raw.length === 0) throw new MonitorQueryError(name, 'must not be empty');
    return raw;
  }

  /** `offset` (0-1,000,000, default 0) and `limit` (1-1000, default 100). */
  page(): Page {
    return {
      offset: this.int('offset', 0, MAX_PAGE_OFFSET, 0),
      limit: this.int('limit', 1, MAX_PAGE_LIMIT, DEFAULT_PAGE_LIMIT),
    };
  }
}

/** The refusal itself: 400 and which parameter, why (MON1.3). */
export function refusal(err: MonitorQueryError): EndpointReply {
  return {
    status: 400,
    json: { error: `bad parameter ${err.message}`, param: err.param, reason: err.reason },
  };
}

/**
 * An endpoint taking the parameters `params`: builds its answer from a
 * checked Query, and answers a refused parameter with 400.
 */
export function withQuery(
  params: readonly string[],
  build: (q: Query) => EndpointReply | Promise<EndpointReply>,
): Endpoint {
  return async (search) => {
    try {
      return await build(new Query(search, params));
    } catch (err) {
      if (err instanceof MonitorQueryError) return refusal(err);
      throw err;
    }
  };
}

/** Shows a caller's text in a reason without letting a long one fill the answer. */
function clip(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}

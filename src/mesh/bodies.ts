/**
 * Message bodies in mesh frames (protocol/MESH.md M4.1): headers and payload
 * travel as the frame's raw data, their split (`hl`, -1 for no headers) and,
 * for several messages, each payload's length (`pl`) in the JSON head.
 */

export interface Body {
  headers: Buffer | undefined;
  payload: Buffer;
}

export function joinBody(headers: Buffer | undefined, payload: Buffer): Buffer {
  return headers === undefined ? payload : Buffer.concat([headers, payload]);
}

export function splitBody(data: Buffer, hl: number): Body {
  return hl >= 0
    ? { headers: data.subarray(0, hl), payload: data.subarray(hl) }
    : { headers: undefined, payload: data };
}

export type Packed<T extends Body> = Omit<T, 'headers' | 'payload'> & { hl: number; pl: number };

/** Several messages: their metadata for the head, their bodies concatenated for the data. */
export function packBodies<T extends Body>(items: readonly T[]): { meta: Packed<T>[]; data: Buffer } {
  const parts: Buffer[] = [];
  const meta = items.map(({ headers, payload, ...rest }) => {
    if (headers !== undefined) parts.push(headers);
    parts.push(payload);
    return { ...rest, hl: headers?.length ?? -1, pl: payload.length };
  });
  return { meta, data: Buffer.concat(parts) };
}

export function unpackBodies<T extends Body>(meta: readonly Packed<T>[], data: Buffer): T[] {
  let at = 0;
  return meta.map(({ hl, pl, ...rest }) => {
    const headers = hl >= 0 ? data.subarray(at, at + hl) : undefined;
    at += Math.max(0, hl);
    const payload = data.subarray(at, at + pl);
    at += pl;
    return { ...rest, headers, payload } as unknown as T;
  });
}

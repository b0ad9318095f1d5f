/** The stream muxer's settings, shared by nodes (peer.ts) and the SDK's libp2p transport. */

/**
 * yamux as nodes and SDK clients use it. A paused stream (a node that stops
 * reading a client, SEC6.5; a link waiting for drain) may still receive one
 * stream window, and libp2p aborts a stream whose unread input passes its
 * 4 MiB read buffer: the window stays below that (yamux's default grows to
 * 16 MiB, which aborted paused client streams under load).
 */
export const YAMUX_INIT = { streamOptions: { maxStreamWindowSize: 2 * 1024 * 1024 } } as const;

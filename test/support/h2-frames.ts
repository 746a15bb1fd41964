/**
 * A raw HTTP/2 peer for attacking a listener with hand-made frames (RFC 9113 §4, §6): it
 * writes the connection preface and whatever frames a test builds — including the ones no
 * well-behaved client would send — and reads back every frame the server sends, so a test
 * can see the GOAWAY (and its error code), the RST_STREAMs and the answers. Header blocks are
 * HPACK literals without indexing and with literal names (RFC 7541 §6.2.2): no dynamic table,
 * so a block means the same whatever was sent before it.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

/** HTTP/2 error codes (RFC 9113 §7) by name, and names by code for messages. */
export const ERROR = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;
export const ERROR_NAME: Record<number, string> = Object.fromEntries(Object.entries(ERROR).map(([k, v]) => [v, k]));

/** SETTINGS identifiers (RFC 9113 §6.5.2). */
export const SETTING = { MAX_CONCURRENT_STREAMS: 0x3, INITIAL_WINDOW_SIZE: 0x4, MAX_HEADER_LIST_SIZE: 0x6 } as const;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** One frame on the wire: the 9-byte header, then the payload. */
export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

export function settings(entries: ReadonlyArray<[number, number]> = [], ack = false): Buffer {
  const payload = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, ack ? FLAG.ACK : 0, 0, payload);
}

export function ping(data = Buffer.alloc(8), ack = false): Buffer {
  return frame(FRAME.PING, ack ? FLAG.ACK : 0, 0, data);
}

export function windowUpdate(stream: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment, 0);
  return frame(FRAME.WINDOW_UPDATE, 0, stream, payload);
}

export function rstStream(stream: number, code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code, 0);
  return frame(FRAME.RST_STREAM, 0, stream, payload);
}

/** RFC 7541 §5.1 integer with an N-bit prefix, the prefix byte's other bits zero. */
function hpackInteger(value: number, prefixBits: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([value]);
  const bytes = [max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** A header block of literal fields without indexing, names literal, no Huffman coding. */
export function hpack(fields: ReadonlyArray<[string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    parts.push(Buffer.from([0x00]), hpackInteger(n.length, 7), n, hpackInteger(v.length, 7), v);
  }
  return Buffer.concat(parts);
}

/** The pseudo-headers of a request for `path` (GET unless told), and any more fields. */
export function requestBlock(path: string, more: ReadonlyArray<[string, string]> = [], method = 'GET'): Buffer {
  return hpack([[':method', method], [':scheme', 'https'], [':authority', 'localhost'], [':path', path], ...more]);
}

export function headers(stream: number, block: Buffer, { endStream = true, endHeaders = true } = {}): Buffer {
  return frame(FRAME.HEADERS, (endStream ? FLAG.END_STREAM : 0) | (endHeaders ? FLAG.END_HEADERS : 0), stream, block);
}

export function continuation(stream: number, block: Buffer, endHeaders = false): Buffer {
  return frame(FRAME.CONTINUATION, endHeaders ? FLAG.END_HEADERS : 0, stream, block);
}

export function data(stream: number, payload: Buffer, endStream = false): Buffer {
  return frame(FRAME.DATA, endStream ? FLAG.END_STREAM : 0, stream, payload);
}

/** What a GOAWAY frame says. */
export function goawayOf(f: Frame): { lastStream: number; code: number; name: string; debug: string } {
  const code = f.payload.readUInt32BE(4);
  return {
    lastStream: f.payload.readUInt32BE(0) & 0x7fffffff,
    code,
    name: ERROR_NAME[code] ?? `0x${code.toString(16)}`,
    debug: f.payload.subarray(8).toString('latin1'),
  };
}

/** RFC 7541 Appendix A: the static table's :status entries. */
const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

/**
 * The :status of a response HEADERS frame, read from the first field of its block: an indexed
 * static entry, or a literal with the :status name (index 8) and a plain (not Huffman) value,
 * which is how nghttp2 sends the codes outside the static table. Undefined for anything else.
 */
export function statusOf(f: Frame): number | undefined {
  const b = f.payload;
  if ((b[0]! & 0x80) !== 0) return STATIC_STATUS[b[0]! & 0x7f];
  const index = (b[0]! & 0xc0) === 0x40 ? b[0]! & 0x3f : b[0]! & 0x0f;
  if (index !== 8 || (b[1]! & 0x80) !== 0) return undefined;
  return Number(b.subarray(2, 2 + b[1]!).toString('latin1'));
}

/** A raw connection to an HTTP/2 listener: frames out as the test writes them, every frame in collected. */
export class RawH2 {
  readonly frames: Frame[] = [];
  /** Resolves when the server closed the connection (or it broke). */
  readonly closed: Promise<void>;
  isClosed = false;
  private pending: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  private constructor(
    readonly socket: Socket,
    /** Answer the server's SETTINGS with an ACK, as any client must (off to play a peer that never does). */
    private readonly ackSettings: boolean,
  ) {
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        this.notify();
        resolve();
      }),
    );
  }

  /**
   * Connects to 127.0.0.1:`port` — over TLS offering only ALPN h2 when `tls`, else h2c with
   * prior knowledge — and sends the preface and an empty SETTINGS (or these `initial` ones);
   * resolves once the server's SETTINGS came and were acknowledged (unless `ackSettings` is off).
   */
  static async open(
    port: number,
    { tls = false, initial = [] as ReadonlyArray<[number, number]>, ackSettings = true, receiveBuffer = 0 } = {},
  ): Promise<RawH2> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s: Socket = tls
        ? tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], rejectUnauthorized: false }, () => resolve(s))
        : netConnect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
    // A reader that stops reading must really stop: no large kernel buffer taking in for it.
    if (receiveBuffer > 0)
      (socket as Socket & { setRecvBufferSize?(n: number): void }).setRecvBufferSize?.(receiveBuffer);
    const peer = new RawH2(socket, ackSettings);
    peer.send(Buffer.concat([PREFACE, settings(initial)]));
    // The ACK of the server's SETTINGS goes out before the test's frames, so it can never land
    // inside a header block the test leaves open (a frame there is a PROTOCOL_ERROR).
    if (ackSettings) await peer.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
    return peer;
  }

  /** Writes bytes; false once the connection is gone (the server may cut an attacker at any point). */
  send(bytes: Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    this.socket.write(bytes);
    return true;
  }

  /** The first frame matching `test` (already received, or arriving within `ms`), else undefined. */
  async waitFor(test: (f: Frame) => boolean, ms = 3000): Promise<Frame | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.frames.find(test);
      if (found !== undefined || this.isClosed || Date.now() >= deadline) return found;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The server's GOAWAY, if one came (within `ms`). */
  async goaway(ms = 3000): Promise<ReturnType<typeof goawayOf> | undefined> {
    const f = await this.waitFor((x) => x.type === FRAME.GOAWAY, ms);
    return f === undefined ? undefined : goawayOf(f);
  }

  /** Resolves true when the server closed the connection within `ms`. */
  async closesWithin(ms: number): Promise<boolean> {
    const timer = new Promise<false>((r) => setTimeout(() => r(false), ms).unref());
    return Promise.race([this.closed.then(() => true), timer]);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private read(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 9) {
      const length = this.pending.readUIntBE(0, 3);
      if (this.pending.length < 9 + length) break;
      const f: Frame = {
        type: this.pending[3]!,
        flags: this.pending[4]!,
        stream: this.pending.readUInt32BE(5) & 0x7fffffff,
        payload: this.pending.subarray(9, 9 + length),
      };
      this.pending = this.pending.subarray(9 + length);
      this.frames.push(f);
      if (this.ackSettings && f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0) this.send(settings([], true));
    }
    this.notify();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

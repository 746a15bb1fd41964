/**
 * Real WebSocket (RFC 6455) on both ends of a tunnel, small enough to read: an HTTP/1.1 echo
 * server that checks the handshake and answers text messages and close frames as a server
 * must, and the frame codec a client uses over any byte stream (an HTTP/2 extended CONNECT
 * stream included, RFC 8441). Node's own WebSocket client talks to the echo server in the
 * tests too, so the server is held to an implementation that is not this file's.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
export const OPCODE = { TEXT: 0x1, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

export function acceptFor(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

/** One frame, FIN set; masked (as a client must send) when `mask`. */
export function encodeFrame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = 0x80 | opcode;
  if (len < 126) head[1] = len;
  else if (len < 65536) {
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!mask) return Buffer.concat([head, payload]);
  head[1]! |= 0x80;
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i % 4]!;
  return Buffer.concat([head, key, body]);
}

export interface WsFrame {
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Reads frames from a byte stream as they complete. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): WsFrame[] {
    this.pending = Buffer.concat([this.pending, chunk]);
    const frames: WsFrame[] = [];
    for (;;) {
      const b = this.pending;
      if (b.length < 2) break;
      const masked = (b[1]! & 0x80) !== 0;
      let len = b[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      const keyAt = at;
      if (masked) at += 4;
      if (b.length < at + len) break;
      const payload = Buffer.from(b.subarray(at, at + len));
      if (masked) for (let i = 0; i < len; i++) payload[i]! ^= b[keyAt + (i % 4)]!;
      frames.push({ opcode: b[0]! & 0x0f, masked, payload });
      this.pending = b.subarray(at + len);
    }
    return frames;
  }
}

export interface EchoServer {
  server: Server;
  port: number;
  address: string;
  /** The handshakes it accepted: the request's fields as it heard them. */
  handshakes: IncomingMessage['headers'][];
  /** Text messages it received, in order. */
  received: string[];
  /** Close frames it received (status codes). */
  closes: number[];
  /** Sends a close frame (1000) to every open connection: the server ending the conversation. */
  closeAll(): void;
  close(): Promise<void>;
}

/**
 * An HTTP/1.1 WebSocket server on loopback that echoes every text message as "echo:<text>",
 * refuses a handshake without a valid key (400) and insists that clients mask their frames.
 */
export async function websocketEchoServer(): Promise<EchoServer> {
  const sockets = new Set<Socket>();
  const handshakes: IncomingMessage['headers'][] = [];
  const received: string[] = [];
  const closes: number[] = [];
  const server = createServer((_req, res) => {
    res.statusCode = 426;
    res.setHeader('upgrade', 'websocket');
    res.end('a WebSocket endpoint\n');
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const open = new Set<Socket>();
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    const key = req.headers['sec-websocket-key'];
    if (
      typeof key !== 'string' ||
      Buffer.from(key, 'base64').length !== 16 ||
      req.headers['sec-websocket-version'] !== '13' ||
      String(req.headers.upgrade).toLowerCase() !== 'websocket'
    ) {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    handshakes.push(req.headers);
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`,
    );
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {});
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        if (!f.masked) {
          // RFC 6455 §5.1: a server closes on an unmasked client frame (1002 protocol error).
          socket.end(encodeFrame(OPCODE.CLOSE, Buffer.from([0x03, 0xea]), false));
          return;
        }
        if (f.opcode === OPCODE.TEXT) {
          received.push(f.payload.toString());
          socket.write(encodeFrame(OPCODE.TEXT, Buffer.from(`echo:${f.payload.toString()}`), false));
        } else if (f.opcode === OPCODE.PING) socket.write(encodeFrame(OPCODE.PONG, f.payload, false));
        else if (f.opcode === OPCODE.CLOSE) {
          closes.push(f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005);
          socket.end(encodeFrame(OPCODE.CLOSE, f.payload.subarray(0, 2), false));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    handshakes,
    received,
    closes,
    closeAll() {
      for (const s of open) s.end(encodeFrame(OPCODE.CLOSE, Buffer.from([0x03, 0xe8]), false));
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A WebSocket conversation over any byte stream the handshake already opened (an HTTP/2 stream, a socket). */
export class WsClient {
  readonly frames: WsFrame[] = [];
  ended = false;
  private readonly reader = new FrameReader();
  private waiters: Array<() => void> = [];

  constructor(readonly stream: Duplex) {
    stream.on('data', (chunk: Buffer) => {
      this.frames.push(...this.reader.push(chunk));
      this.notify();
    });
    stream.on('end', () => {
      this.ended = true;
      this.notify();
    });
    stream.on('close', () => {
      this.ended = true;
      this.notify();
    });
    stream.on('error', () => {});
  }

  send(text: string): void {
    this.stream.write(encodeFrame(OPCODE.TEXT, Buffer.from(text), true));
  }

  sendClose(code = 1000): void {
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(code, 0);
    this.stream.write(encodeFrame(OPCODE.CLOSE, payload, true));
  }

  /** The texts received so far. */
  texts(): string[] {
    return this.frames.filter((f) => f.opcode === OPCODE.TEXT).map((f) => f.payload.toString());
  }

  /** Waits (up to `ms`) until `done` holds or the stream ended; returns whether it holds. */
  async until(done: () => boolean, ms = 3000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!done() && !this.ended && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return done();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/**
 * One HTTP/2 request as the tests make it with node:http2's client: the answer's fields
 * (the status as `:status` too) and its body as text, once the stream ended.
 */
import type { ClientHttp2Session } from 'node:http2';

export interface H2Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

export function h2Ask(session: ClientHttp2Session, headers: Record<string, string>, body?: string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let fields: Record<string, unknown> = {};
    let text = '';
    stream.on('response', (h) => {
      fields = h;
    });
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => {
      text += c;
    });
    stream.on('end', () => resolve({ status: Number(fields[':status']), headers: fields, body: text }));
    stream.on('error', reject);
    stream.end(body);
  });
}

/**
 * A small DNS server of the tests' own on loopback (UDP): answers A queries for the names
 * it is given, NOERROR with no records for other types of a known name, NXDOMAIN otherwise.
 * Enough for `gangway doctor --resolver` to have a resolver that disagrees with the system's.
 */
import { createSocket } from 'node:dgram';

export interface DnsServer {
  address: string;
  close(): Promise<void>;
}

export async function dnsServer(records: Record<string, string>): Promise<DnsServer> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    if (msg.length < 12) return;
    let i = 12;
    const labels: string[] = [];
    while (i < msg.length && msg[i] !== 0) {
      const n = msg[i]!;
      labels.push(msg.subarray(i + 1, i + 1 + n).toString('latin1'));
      i += n + 1;
    }
    const questionEnd = i + 5;
    const type = msg.readUInt16BE(i + 1);
    const name = labels.join('.').toLowerCase();
    const address = records[name];
    const answers: Buffer[] = [];
    if (address !== undefined && type === 1) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0);
      rr.writeUInt16BE(1, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(60, 6);
      rr.writeUInt16BE(4, 10);
      for (const [k, o] of address.split('.').entries()) rr.writeUInt8(Number(o), 12 + k);
      answers.push(rr);
    }
    const head = Buffer.alloc(12);
    msg.copy(head, 0, 0, 2); // id
    head.writeUInt16BE(address === undefined ? 0x8183 : 0x8180, 2); // response, RD, RA; NXDOMAIN when unknown
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(answers.length, 6);
    socket.send(Buffer.concat([head, msg.subarray(12, questionEnd), ...answers]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { address: `127.0.0.1:${socket.address().port}`, close: () => new Promise((r) => socket.close(() => r())) };
}

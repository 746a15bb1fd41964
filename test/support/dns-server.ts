/**
 * A small DNS server of the tests' own on loopback (UDP). `dnsServer(records)` answers A
 * queries for the names it is given, NOERROR with no records for other types of a known name,
 * NXDOMAIN otherwise — enough for `gangway doctor --resolver`. `dnsZone()` is a zone a test
 * changes as it runs: A, AAAA and SRV records with their TTLs, answers that fail on purpose
 * (SERVFAIL, REFUSED, NXDOMAIN, or no answer at all, so the client times out), and a log of
 * every question asked, with its time.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';

export interface DnsServer {
  address: string;
  close(): Promise<void>;
}

export interface SrvTarget {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

export interface RecordSet {
  a?: string[];
  aaaa?: string[];
  srv?: SrvTarget[];
  /** Seconds, for every record of the name. */
  ttl?: number;
}

/** How the zone answers: with its records, or failing in one way for every question. */
export type ZoneMode = 'answer' | 'servfail' | 'refused' | 'nxdomain' | 'drop';

export interface Question {
  name: string;
  type: 'A' | 'AAAA' | 'SRV' | string;
  at: number;
}

export interface DnsZone extends DnsServer {
  /** Replaces a name's records (a name with no records of a type answers NOERROR, empty). */
  set(name: string, records: RecordSet): void;
  /** Removes the name: NXDOMAIN from now on. */
  remove(name: string): void;
  mode: ZoneMode;
  /** A mode for one type of question only (say AAAA failing while A answers); `mode` for the rest. */
  modeFor: Partial<Record<'A' | 'AAAA' | 'SRV', ZoneMode>>;
  /** Every question asked, oldest first. */
  readonly questions: Question[];
  /** Questions of one type for one name. */
  asked(name: string, type: string): Question[];
}

const TYPES: Record<number, string> = { 1: 'A', 28: 'AAAA', 33: 'SRV' };
const RCODE: Record<Exclude<ZoneMode, 'drop' | 'answer'>, number> = { servfail: 2, nxdomain: 3, refused: 5 };

export async function dnsServer(records: Record<string, string>): Promise<DnsServer> {
  const zone = await dnsZone();
  for (const [name, address] of Object.entries(records)) zone.set(name, { a: [address], ttl: 60 });
  return zone;
}

export async function dnsZone(): Promise<DnsZone> {
  const names = new Map<string, RecordSet>();
  const questions: Question[] = [];
  const socket = createSocket('udp4');
  const zone: DnsZone = {
    address: '',
    mode: 'answer',
    modeFor: {},
    questions,
    set(name, records) {
      names.set(name.toLowerCase(), records);
    },
    remove(name) {
      names.delete(name.toLowerCase());
    },
    asked(name, type) {
      return questions.filter((q) => q.name === name.toLowerCase() && q.type === type);
    },
    close: () => new Promise((r) => socket.close(() => r())),
  };
  socket.on('message', (msg, rinfo) => answer(socket, zone, names, msg, rinfo));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  zone.address = `127.0.0.1:${socket.address().port}`;
  return zone;
}

function answer(socket: Socket, zone: DnsZone, names: Map<string, RecordSet>, msg: Buffer, rinfo: RemoteInfo): void {
  if (msg.length < 12) return;
  let i = 12;
  const labels: string[] = [];
  while (i < msg.length && msg[i] !== 0) {
    const n = msg[i]!;
    labels.push(msg.subarray(i + 1, i + 1 + n).toString('latin1'));
    i += n + 1;
  }
  const questionEnd = i + 5;
  const typeCode = msg.readUInt16BE(i + 1);
  const name = labels.join('.').toLowerCase();
  const type = TYPES[typeCode] ?? String(typeCode);
  zone.questions.push({ name, type, at: Date.now() });
  const mode = zone.modeFor[type as 'A'] ?? zone.mode;
  if (mode === 'drop') return;
  const records = names.get(name);
  const answers: Buffer[] = [];
  let rcode = 0;
  if (mode !== 'answer') rcode = RCODE[mode];
  else if (records === undefined) rcode = 3;
  else {
    const ttl = records.ttl ?? 60;
    if (typeCode === 1) for (const a of records.a ?? []) answers.push(resourceRecord(1, ttl, ipv4Bytes(a)));
    if (typeCode === 28) for (const a of records.aaaa ?? []) answers.push(resourceRecord(28, ttl, ipv6Bytes(a)));
    if (typeCode === 33)
      for (const s of records.srv ?? []) {
        const fixed = Buffer.alloc(6);
        fixed.writeUInt16BE(s.priority, 0);
        fixed.writeUInt16BE(s.weight, 2);
        fixed.writeUInt16BE(s.port, 4);
        answers.push(resourceRecord(33, ttl, Buffer.concat([fixed, encodeName(s.target)])));
      }
  }
  const head = Buffer.alloc(12);
  msg.copy(head, 0, 0, 2); // id
  head.writeUInt16BE(0x8180 | rcode, 2); // response, RD, RA, and the rcode
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answers.length, 6);
  socket.send(Buffer.concat([head, msg.subarray(12, questionEnd), ...answers]), rinfo.port, rinfo.address);
}

/** An answer record for the question's name (a pointer to offset 12). */
function resourceRecord(type: number, ttl: number, data: Buffer): Buffer {
  const rr = Buffer.alloc(12);
  rr.writeUInt16BE(0xc00c, 0);
  rr.writeUInt16BE(type, 2);
  rr.writeUInt16BE(1, 4);
  rr.writeUInt32BE(ttl, 6);
  rr.writeUInt16BE(data.length, 10);
  return Buffer.concat([rr, data]);
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

function ipv6Bytes(address: string): Buffer {
  if (!isIPv6(address)) throw new Error(`not an IPv6 address: ${address}`);
  const [head, tail] = address.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  for (const [k, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), k * 2);
  return out;
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.');
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])),
    Buffer.from([0]),
  ]);
}

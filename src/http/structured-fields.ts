/**
 * RFC 8941 structured field values, as far as HTTP fields the gateway reads and writes need
 * them (Proxy-Status, RateLimit): lists of items with parameters. Parsing follows §4.2 step
 * by step; serialising writes strings and tokens so that any input yields a valid field.
 */

export type BareItem =
  | { type: 'integer' | 'decimal'; value: number }
  | { type: 'string' | 'token'; value: string }
  | { type: 'boolean'; value: boolean }
  | { type: 'binary'; value: Uint8Array };

export interface Item {
  value: BareItem;
  params: Map<string, BareItem>;
}

export interface ParsedList {
  members: Item[];
  /** False when the field did not parse to its end; `members` holds what came before the fault. */
  complete: boolean;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/;
const KEY_START = /[a-z*]/;
const KEY_CHAR = /[a-z0-9_\-.*]/;

/** Parses an sf-list. Inner lists are not used by any field here and end the parse. */
export function parseList(input: string): ParsedList {
  const p = new Parser(input);
  const members: Item[] = [];
  p.skip(' ');
  while (!p.done()) {
    const item = p.item();
    if (item === undefined) return { members, complete: false };
    members.push(item);
    p.skipOws();
    if (p.done()) return { members, complete: true };
    if (!p.take(',')) return { members, complete: false };
    p.skipOws();
    if (p.done()) return { members, complete: false }; // a trailing comma
  }
  return { members, complete: true };
}

class Parser {
  i = 0;
  constructor(private readonly s: string) {}

  done(): boolean {
    return this.i >= this.s.length;
  }
  peek(): string {
    return this.s[this.i] ?? '';
  }
  take(c: string): boolean {
    if (this.s[this.i] !== c) return false;
    this.i++;
    return true;
  }
  skip(c: string): void {
    while (this.s[this.i] === c) this.i++;
  }
  skipOws(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
  }

  item(): Item | undefined {
    const value = this.bareItem();
    if (value === undefined) return undefined;
    const params = this.parameters();
    return params === undefined ? undefined : { value, params };
  }

  parameters(): Map<string, BareItem> | undefined {
    const params = new Map<string, BareItem>();
    while (this.take(';')) {
      this.skip(' ');
      const key = this.key();
      if (key === undefined) return undefined;
      let value: BareItem | undefined = { type: 'boolean', value: true };
      if (this.take('=')) {
        value = this.bareItem();
        if (value === undefined) return undefined;
      }
      params.set(key, value);
    }
    return params;
  }

  key(): string | undefined {
    if (!KEY_START.test(this.peek())) return undefined;
    const start = this.i;
    while (!this.done() && KEY_CHAR.test(this.peek())) this.i++;
    return this.s.slice(start, this.i);
  }

  bareItem(): BareItem | undefined {
    const c = this.peek();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    if (c === '"') return this.string();
    if (c === '*' || /[A-Za-z]/.test(c)) return this.token();
    if (c === ':') return this.binary();
    if (c === '?') return this.boolean();
    return undefined;
  }

  number(): BareItem | undefined {
    const m = /^-?(\d{1,15})(\.\d{1,3})?/.exec(this.s.slice(this.i, this.i + 20));
    if (!m || (m[2] !== undefined && m[1]!.length > 12)) return undefined;
    const next = this.s[this.i + m[0].length];
    if (next !== undefined && /[\d.]/.test(next)) return undefined; // too many digits
    this.i += m[0].length;
    return { type: m[2] === undefined ? 'integer' : 'decimal', value: Number(m[0]) };
  }

  string(): BareItem | undefined {
    this.i++; // the opening quote
    let out = '';
    while (!this.done()) {
      const c = this.s[this.i++]!;
      if (c === '\\') {
        const next = this.s[this.i++];
        if (next !== '"' && next !== '\\') return undefined;
        out += next;
      } else if (c === '"') {
        return { type: 'string', value: out };
      } else {
        const code = c.charCodeAt(0);
        if (code < 0x20 || code > 0x7e) return undefined;
        out += c;
      }
    }
    return undefined; // no closing quote
  }

  token(): BareItem {
    const start = this.i++;
    while (!this.done() && TCHAR.test(this.peek())) this.i++;
    return { type: 'token', value: this.s.slice(start, this.i) };
  }

  binary(): BareItem | undefined {
    const end = this.s.indexOf(':', this.i + 1);
    if (end === -1) return undefined;
    const b64 = this.s.slice(this.i + 1, end);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return undefined;
    this.i = end + 1;
    return { type: 'binary', value: new Uint8Array(Buffer.from(b64, 'base64')) };
  }

  boolean(): BareItem | undefined {
    const c = this.s[this.i + 1];
    if (c !== '0' && c !== '1') return undefined;
    this.i += 2;
    return { type: 'boolean', value: c === '1' };
  }
}

/**
 * An sf-string. Only printable ASCII may appear in one, so anything else (a control
 * character, non-ASCII text in an error message) is written as "?" rather than making the
 * whole field invalid.
 */
export function sfString(value: string): string {
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) out += `\\${value[i]}`;
    else if (c >= 0x20 && c <= 0x7e) out += value[i];
    else out += '?';
  }
  return `${out}"`;
}

/** Whether `value` can be written as an sf-token (otherwise write it as a string). */
export function isToken(value: string): boolean {
  return /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/.test(value);
}

/** The string or token value of a bare item, or undefined for other types. */
export function textOf(item: BareItem | undefined): string | undefined {
  return item !== undefined && (item.type === 'string' || item.type === 'token') ? item.value : undefined;
}

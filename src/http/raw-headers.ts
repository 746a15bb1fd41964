/**
 * Raw header lists, the flat [name, value, name, value…] form that Node and undici both speak:
 * turning undici's buffers into the pairs Node's response API takes. Latin-1 keeps every byte
 * as it came, which is how Node writes header strings back out. Over HTTP/2 undici hands
 * over node:http2's header object instead of buffers; it is brought to the same form here.
 */

/** node:http2's form of a header block: values by lower-case name, a repeated field as an array. */
type HeaderObject = Record<string, string | string[] | number | undefined>;

/**
 * A response's raw header fields as undici's buffers, whichever protocol carried them: HTTP/1.1
 * gives buffers already; HTTP/2 a header object (its pseudo-headers already taken out), turned
 * into buffers once per answer so everything downstream reads one form.
 */
export function rawHeadersOf(raw: unknown): Buffer[] {
  if (Array.isArray(raw)) return raw as Buffer[];
  const out: Buffer[] = [];
  if (raw === null || typeof raw !== 'object') return out;
  for (const [name, value] of Object.entries(raw as HeaderObject)) {
    if (value === undefined || name.charCodeAt(0) === 58 /* : */) continue;
    const key = Buffer.from(name, 'latin1');
    if (Array.isArray(value)) for (const v of value) out.push(key, Buffer.from(v, 'latin1'));
    else out.push(key, Buffer.from(String(value), 'latin1'));
  }
  return out;
}

/** An answer's trailers as name/value pairs (undefined when there are none), from either protocol's form. */
export function trailerPairsOf(raw: unknown): Array<[string, string]> | undefined {
  if (raw === null || raw === undefined) return undefined;
  if (Array.isArray(raw)) return raw.length > 0 ? rawPairs(raw as Buffer[]) : undefined;
  const out: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(raw as HeaderObject)) {
    if (value === undefined || name.charCodeAt(0) === 58 /* : */) continue;
    if (Array.isArray(value)) for (const v of value) out.push([name, v]);
    else out.push([name, String(value)]);
  }
  return out.length > 0 ? out : undefined;
}

/** Name/value pairs from undici's raw buffers (e.g. trailers), as Node's addTrailers wants them. */
export function rawPairs(raw: readonly Buffer[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!.toString('latin1'), raw[i + 1]!.toString('latin1')]);
  return out;
}

/**
 * A flat field list as an object by lower-case name, a repeated field as an array of its
 * values, the names in `leaveOut` left out: the form node:http2 and http-cache-semantics take.
 */
export function fieldsObject(
  flat: readonly string[],
  leaveOut: ReadonlySet<string>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    if (leaveOut.has(name)) continue;
    const value = flat[i + 1]!;
    const before = out[name];
    out[name] = before === undefined ? value : Array.isArray(before) ? [...before, value] : [before, value];
  }
  return out;
}

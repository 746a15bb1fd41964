/**
 * Raw header lists, the flat [name, value, name, value…] form that Node and undici both speak:
 * turning undici's buffers into the pairs Node's response API takes. Latin-1 keeps every byte
 * as it came, which is how Node writes header strings back out.
 */

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

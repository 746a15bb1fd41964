/**
 * The V8 settings a gateway process runs with, given on node's command line because V8 sizes its
 * heap once, when the process starts: the `gangway` executable's first line carries them, as do
 * `npm start`, the supervisor's workers and the benchmarks; docs/operations.md says how to give
 * them to node yourself.
 *
 * `--max-semi-space-size=4` (MiB): the young generation stays small. A relayed body's bytes live
 * outside the JavaScript heap, in the buffers each socket read allocates, and V8 frees those only
 * when it collects the objects that hold them. With Node 24's default young generation (up to 32
 * MiB per semi-space) collections of it are rare under streaming, the buffers pile up, and V8's
 * limit on outside memory starts full mark-compacts instead — 7 a second, a third of the core,
 * with 64 downloads of 1 MiB at once. With 4 MiB the young collections come often enough to free
 * them: measured 20–30% less CPU per 1 MiB download and a shorter tail, and no change on small
 * answers (docs/benchmarks.md, "Garbage collection and large bodies").
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** The flags of NODE_FLAGS this process was started without (neither on its command line nor in NODE_OPTIONS). */
export function missingNodeFlags(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].map(flagName);
  return NODE_FLAGS.filter((f) => !given.includes(flagName(f)));
}

/** A command line for a node process: NODE_FLAGS first, unless `execArgv` sets one of them itself. */
export function withNodeFlags(execArgv: readonly string[]): string[] {
  const missing = missingNodeFlags(execArgv, '');
  return [...missing, ...execArgv];
}

/** "--max-semi-space-size=4" and "--max_semi_space_size" name the same V8 flag. */
function flagName(arg: string): string {
  return arg.split('=')[0]!.replaceAll('_', '-');
}

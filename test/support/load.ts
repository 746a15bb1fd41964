/**
 * A bounded load for fault tests: a fixed number of requests at a fixed concurrency over
 * keep-alive connections, recording every status and latency. Stops by itself.
 */
import { Agent, request } from 'undici';

export interface LoadResult {
  statuses: number[];
  latenciesMs: number[];
  errors: string[];
  /** Status counts, e.g. { 200: 598, 502: 2 }. */
  byStatus: Record<number, number>;
  p99: number;
}

export async function runLoad(
  url: string,
  opts: {
    total: number;
    concurrency: number;
    method?: string;
    body?: (i: number) => string;
    onProgress?: (done: number) => void;
    timeoutMs?: number;
  },
): Promise<LoadResult> {
  const agent = new Agent({ connections: opts.concurrency, keepAliveTimeout: 10_000 });
  const statuses: number[] = [];
  const latenciesMs: number[] = [];
  const errors: string[] = [];
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < opts.total) {
      const i = next++;
      const started = performance.now();
      try {
        const res = await request(url, {
          dispatcher: agent,
          method: (opts.method ?? 'GET') as 'GET',
          body: opts.body?.(i),
          headersTimeout: opts.timeoutMs ?? 15_000,
          bodyTimeout: opts.timeoutMs ?? 15_000,
        });
        await res.body.text();
        statuses.push(res.statusCode);
      } catch (err) {
        errors.push((err as Error).message);
        statuses.push(0);
      }
      latenciesMs.push(performance.now() - started);
      opts.onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  await agent.close();
  const byStatus: Record<number, number> = {};
  for (const s of statuses) byStatus[s] = (byStatus[s] ?? 0) + 1;
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return { statuses, latenciesMs, errors, byStatus, p99: sorted[Math.floor(sorted.length * 0.99)] ?? 0 };
}

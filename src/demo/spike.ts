/**
 * The console's overload spike: an open-loop burst of catalogue requests (a fixed rate,
 * whether or not earlier ones were answered, as a crowd arrives), counted by outcome so the
 * console can say how many were served, shed with a 503, or failed.
 */
import { Pool } from 'undici';

export interface SpikeResult {
  sent: number;
  ok: number;
  shed: number;
  other: number;
  failed: number;
}

export async function spike(
  origin: string,
  path: string,
  perSecond: number,
  seconds: number,
  onProgress: (r: SpikeResult) => void,
): Promise<SpikeResult> {
  const pool = new Pool(origin, { connections: 512, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const r: SpikeResult = { sent: 0, ok: 0, shed: 0, other: 0, failed: 0 };
  const total = perSecond * seconds;
  const start = performance.now();
  const pending: Array<Promise<void>> = [];
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * perSecond));
      while (r.sent < due) {
        r.sent++;
        pending.push(
          // no-cache: every request goes to the replicas (a spike the cache absorbed would show no shedding).
          pool
            .request({
              method: 'GET',
              path,
              headers: { 'user-agent': 'gangway-demo-spike', 'cache-control': 'no-cache' },
            })
            .then(
              async (res) => {
                await res.body.dump();
                if (res.statusCode === 200) r.ok++;
                else if (res.statusCode === 503 || res.statusCode === 429) r.shed++;
                else r.other++;
              },
              () => {
                r.failed++;
              },
            ),
        );
      }
      onProgress(r);
      if (r.sent >= total) resolve();
      else setTimeout(tick, 5);
    };
    tick();
  });
  await Promise.all(pending);
  await pool.close();
  onProgress(r);
  return r;
}

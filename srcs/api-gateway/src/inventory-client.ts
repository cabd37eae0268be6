import http from 'node:http';

/**
 * Asks the inventory's own /health. Resolves with its report when it answers 200, rejects with a
 * reason otherwise; bounded by `timeoutMs` so a hung inventory cannot hang the gateway's /health.
 */
export function inventoryHealth(baseUrl: string, agent: http.Agent, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.get(new URL('/health', baseUrl), { agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        if (res.statusCode === 200) resolve({ url: baseUrl });
        else reject(new Error(`inventory /health answered ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

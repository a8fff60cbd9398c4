/**
 * Reads what the bench needs from Prometheus text expositions (/metrics of the api and the
 * worker): no client library, just `name{labels} value` lines.
 */

export interface Series {
  name: string;
  /** The label part as printed, e.g. `queue="persist",state="waiting"` (empty without labels). */
  labels: string;
  value: number;
}

export function parseMetrics(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m) out.push({ name: m[1]!, labels: m[2] ?? '', value: Number(m[3]) });
  }
  return out;
}

/** Sum of every series called `name` whose labels contain each of `labels` (e.g. `state="waiting"`). */
export function sumOf(series: readonly Series[], name: string, ...labels: string[]): number {
  let sum = 0;
  for (const s of series) if (s.name === name && labels.every((l) => s.labels.includes(l))) sum += s.value;
  return sum;
}

export async function scrape(url: string, timeoutMs = 5000): Promise<Series[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return parseMetrics(await res.text());
}

/** Scrapes several endpoints and adds them up per name (several worker processes). */
export async function scrapeAll(urls: readonly string[]): Promise<Series[]> {
  return (await Promise.all(urls.map((u) => scrape(u)))).flat();
}

/** Batches and messages the workers have written so far (parley_persist_* counters). */
export async function persistCounters(
  workerMetricsUrls: readonly string[],
): Promise<{ batches: number; messages: number } | null> {
  if (workerMetricsUrls.length === 0) return null;
  const s = await scrapeAll(workerMetricsUrls);
  return { batches: sumOf(s, 'parley_persist_batches_total'), messages: sumOf(s, 'parley_persist_messages_total') };
}

/** Persistence jobs not yet done (waiting, active, delayed) as the api's /metrics reports them. */
export function persistBacklog(series: readonly Series[]): number {
  return ['waiting', 'active', 'delayed'].reduce(
    (n, state) => n + sumOf(series, 'parley_queue_jobs', 'queue="persist"', `state="${state}"`),
    0,
  );
}

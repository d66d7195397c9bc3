/**
 * Prometheus text exposition format 0.0.4: one `# HELP` and one `# TYPE` per family, samples
 * after them, histograms as cumulative `_bucket{le=…}` plus `_sum` and `_count`.
 */
import type { HistogramSnapshot } from './histogram.ts';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Record<string, string | number>;

export interface Sample {
  labels?: Labels;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  const parts = Object.entries(labels).map(([k, v]) => {
    if (!LABEL.test(k)) throw new RangeError(`invalid Prometheus label name: ${k}`);
    return `${k}="${escapeLabel(String(v))}"`;
  });
  return parts.length ? `{${parts.join(',')}}` : '';
}

export class Exposition {
  private readonly lines: string[] = [];
  private readonly names = new Set<string>();

  counter(name: string, help: string, samples: Sample[]): this {
    return this.family(name, help, 'counter', samples);
  }

  gauge(name: string, help: string, samples: Sample[]): this {
    return this.family(name, help, 'gauge', samples);
  }

  /** `scale` converts the histogram's unit to the metric's (e.g. 1e-3 for ms → seconds). */
  histogram(name: string, help: string, h: HistogramSnapshot, scale = 1): this {
    this.header(name, help, 'histogram');
    let cumulative = 0;
    h.bounds.forEach((b, i) => {
      cumulative += h.counts[i]!;
      this.lines.push(`${name}_bucket{le="${formatValue(b * scale)}"} ${cumulative}`);
    });
    this.lines.push(`${name}_bucket{le="+Inf"} ${h.count}`);
    this.lines.push(`${name}_sum ${formatValue(h.sum * scale)}`);
    this.lines.push(`${name}_count ${h.count}`);
    return this;
  }

  text(): string {
    return this.lines.length ? `${this.lines.join('\n')}\n` : '';
  }

  private family(name: string, help: string, type: 'counter' | 'gauge', samples: Sample[]): this {
    this.header(name, help, type);
    for (const s of samples) this.lines.push(`${name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
    return this;
  }

  private header(name: string, help: string, type: string): void {
    if (!NAME.test(name)) throw new RangeError(`invalid Prometheus metric name: ${name}`);
    if (this.names.has(name)) throw new RangeError(`metric family ${name} written twice`);
    this.names.add(name);
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }
}

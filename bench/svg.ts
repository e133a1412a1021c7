// Minimal SVG line charts for the benchmark report: log-log or linear axes, one polyline
// per series, decade ticks, a legend. No dependencies, deterministic output.

export interface Series {
  name: string
  points: Array<[number, number]>
}

export interface ChartOptions {
  title: string
  xLabel: string
  yLabel: string
  logX?: boolean
  logY?: boolean
  width?: number
  height?: number
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf']

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function fmt(v: number): string {
  if (v >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`
  if (v >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`
  if (v >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`
  return `${+v.toPrecision(3)}`
}

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = []
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e)
    return out
  }
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 4 || 1))
  const out: number[] = []
  for (let v = Math.floor(lo / step) * step; v <= hi + step / 2; v += step) out.push(v)
  return out.length > 12 ? out.filter((_, i) => i % Math.ceil(out.length / 8) === 0) : out
}

export function lineChart(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 720
  const H = o.height ?? 420
  const m = { l: 70, r: 190, t: 40, b: 50 }
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => (!o.logX || x > 0) && (!o.logY || y > 0))
  if (pts.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"></svg>\n`
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))]
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))]
  if (o.logX) [x0, x1] = [10 ** Math.floor(Math.log10(x0)), 10 ** Math.ceil(Math.log10(x1))]
  if (o.logY) [y0, y1] = [10 ** Math.floor(Math.log10(y0)), 10 ** Math.ceil(Math.log10(y1))]
  else y0 = Math.min(0, y0)
  if (x1 === x0) x1 = x0 + 1
  if (y1 === y0) y1 = y0 + 1
  const sx = (x: number) => m.l + ((o.logX ? Math.log10(x) - Math.log10(x0) : x - x0) / (o.logX ? Math.log10(x1) - Math.log10(x0) : x1 - x0)) * (W - m.l - m.r)
  const sy = (y: number) => H - m.b - ((o.logY ? Math.log10(y) - Math.log10(y0) : y - y0) / (o.logY ? Math.log10(y1) - Math.log10(y0) : y1 - y0)) * (H - m.t - m.b)
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  out.push(`<text x="${W / 2 - m.r / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`)
  for (const t of ticks(x0, x1, !!o.logX)) {
    if (t < x0 || t > x1) continue
    out.push(`<line x1="${sx(t)}" y1="${m.t}" x2="${sx(t)}" y2="${H - m.b}" stroke="#ddd"/>`)
    out.push(`<text x="${sx(t)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(t)}</text>`)
  }
  for (const t of ticks(y0, y1, !!o.logY)) {
    if (t < y0 || t > y1) continue
    out.push(`<line x1="${m.l}" y1="${sy(t)}" x2="${W - m.r}" y2="${sy(t)}" stroke="#ddd"/>`)
    out.push(`<text x="${m.l - 6}" y="${sy(t) + 4}" text-anchor="end">${fmt(t)}</text>`)
  }
  out.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#333"/>`)
  out.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">${esc(o.xLabel)}</text>`)
  out.push(`<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`)
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]
    const p = s.points.filter(([x, y]) => (!o.logX || x > 0) && (!o.logY || y > 0)).sort((a, b) => a[0] - b[0])
    if (p.length) {
      out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`)
      for (const [x, y] of p) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${c}"/>`)
    }
    const ly = m.t + 10 + i * 18
    out.push(`<line x1="${W - m.r + 12}" y1="${ly}" x2="${W - m.r + 32}" y2="${ly}" stroke="${c}" stroke-width="2"/>`)
    out.push(`<text x="${W - m.r + 38}" y="${ly + 4}">${esc(s.name)}</text>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

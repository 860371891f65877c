// `lovage runs verify <id> | --all`: re-decide every recorded step and report what differs.
import type { App } from '../app/app.ts';
import type { WorkflowEvent } from '../engine/events.ts';
import type { VerifyDifference, VerifyReport } from '../engine/verify.ts';
import { LovageError } from '../errors.ts';
import type { RunRecord } from '../eventstore/store.ts';
import { UsageError } from './args.ts';
import { paint, plural } from './format.ts';
import type { RunsContext, RunsSubcommand } from './runs-command.ts';
import { compactEvent } from './runs-history.ts';
import { commonUsage, parseRunsArgs } from './runs-flags.ts';

/** Most events of a step listed per side; the rest are counted. */
const STEP_EVENTS = 8;

/** Verifies one run; a log the store cannot even read (CORRUPT_LOG) is a corrupt report, not an error. */
async function verifyOne(app: App, runId: string): Promise<VerifyReport> {
  try {
    return await app.runs.verify(runId);
  } catch (e) {
    if (e instanceof LovageError && e.code === 'CORRUPT_LOG') return { runId, events: 0, steps: 0, differences: [], corrupt: e.message };
    throw e;
  }
}

/** The keys whose values differ between two events, for differences the compact text hides. */
function differingKeys(a: WorkflowEvent | undefined, b: WorkflowEvent | undefined): string[] {
  if (!a || !b) return [];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => JSON.stringify((a as Record<string, unknown>)[k]) !== JSON.stringify((b as Record<string, unknown>)[k]));
}

/** One difference: version and cause, then recorded and expected events side by side, `≠` where they differ. */
function differenceLines(d: VerifyDifference, color: boolean): string[] {
  const lines = [`  version ${d.version}  ${d.cause}`];
  const side = (label: string, events: readonly WorkflowEvent[], other: readonly WorkflowEvent[]) => {
    if (events.length === 0) lines.push(`    ${label}  (nothing)`);
    events.slice(0, STEP_EVENTS).forEach((e, i) => {
      const same = JSON.stringify(e) === JSON.stringify(other[i]);
      const keys = same ? [] : differingKeys(e, other[i]);
      const text = `${compactEvent(e)}${keys.length ? `  [differs in ${keys.join(', ')}]` : ''}`;
      lines.push(`    ${i === 0 ? label : ' '.repeat(label.length)}  ${same ? '=' : paint(color, '31', '≠')} ${text.length > 160 ? `${text.slice(0, 159)}…` : text}`);
    });
    if (events.length > STEP_EVENTS) lines.push(`    ${' '.repeat(label.length)}  … ${events.length - STEP_EVENTS} more`);
  };
  side('recorded', d.recorded, d.expected);
  side('expected', d.expected, d.recorded);
  if (d.error !== undefined) lines.push(`    the current rules refuse this input: ${d.error}`);
  return lines;
}

/** A report as text: one line when clean, the differences or the corruption otherwise. */
function reportLines(r: VerifyReport, color: boolean, verbose: boolean): string[] {
  if (r.corrupt !== undefined) return [`run ${r.runId}: ${paint(color, '31', 'CORRUPT')}  ${r.corrupt}${r.steps ? ` (after ${plural(r.steps, 'step')})` : ''}`];
  if (r.differences.length === 0) {
    return verbose ? [`run ${r.runId}: ${paint(color, '32', 'clean')}  ${plural(r.steps, 'step')}, ${plural(r.events, 'event')}: every recorded decision is what the current rules decide`] : [`run ${r.runId}: ${paint(color, '32', 'clean')}  ${plural(r.steps, 'step')}, ${plural(r.events, 'event')}`];
  }
  const n = r.differences.length;
  return [`run ${r.runId}: ${paint(color, '31', plural(n, 'difference'))} in ${plural(r.steps, 'step')} (${plural(r.events, 'event')})`, ...r.differences.flatMap((d) => differenceLines(d, color))];
}

const bad = (r: VerifyReport) => r.corrupt !== undefined || r.differences.length > 0;

/** Verifies every run in the store, page by page (newest first), printing each report as it goes. */
async function verifyAll(ctx: RunsContext, app: App, json: boolean | undefined): Promise<number> {
  const reports: VerifyReport[] = [];
  let counts = { runs: 0, clean: 0, differing: 0, corrupt: 0 };
  for (let after: RunRecord | undefined; ;) {
    const page = await app.runs.list({ limit: 200, ...(after ? { after } : {}) });
    if (page.length === 0) break;
    for (const run of page) {
      const r = await verifyOne(app, run.runId);
      counts = { runs: counts.runs + 1, clean: counts.clean + Number(!bad(r)), differing: counts.differing + Number(r.differences.length > 0), corrupt: counts.corrupt + Number(r.corrupt !== undefined) };
      if (json) reports.push(r);
      else for (const line of reportLines(r, ctx.color, false)) ctx.io.out(line);
    }
    after = page[page.length - 1];
  }
  if (json) ctx.io.out(JSON.stringify({ ...counts, reports }, null, 2));
  else ctx.io.out(`verified ${plural(counts.runs, 'run')}: ${counts.clean} clean, ${counts.differing} with differences, ${counts.corrupt} corrupt`);
  return counts.clean === counts.runs ? 0 : 1;
}

/** `lovage runs verify`. */
export const verifyCommand: RunsSubcommand = {
  summary: 'check recorded decisions against the current rules (exit 1 if any differ)',
  usage: `Usage: lovage runs verify <id> | --all [options]

Re-folds the run's log and re-runs the current decision rules over every recorded input (a submit,
a claim, an outcome, a cancel, a resume). Reports each step whose recorded decisions differ from what
the rules decide now (version, cause, recorded vs expected), and logs that do not fold at all.
Exit code 0 when every run checked is clean, 1 when differences or corruption were found.

Options:
      --all              verify every run in the store, page by page
${commonUsage}`,
  async run(argv, ctx) {
    const { values: v, positionals } = parseRunsArgs('runs verify', argv, { all: { type: 'boolean' } }, ['id?']);
    if (v.help) return (ctx.io.out(this.usage), 0);
    const [id] = positionals;
    if (v.all && id !== undefined) throw new UsageError('lovage runs verify: give a run id or --all, not both');
    if (!v.all && id === undefined) throw new UsageError('lovage runs verify: missing <id>; give a run id, or --all to verify every run');
    const app = await ctx.open(v.store);
    if (v.all) return verifyAll(ctx, app, v.json);
    const report = await verifyOne(app, id!);
    if (v.json) ctx.io.out(JSON.stringify({ ...report, clean: !bad(report) }, null, 2));
    else for (const line of reportLines(report, ctx.color, true)) ctx.io.out(line);
    return bad(report) ? 1 : 0;
  },
};

import { cpus, loadavg } from "node:os";

/** Load average and CPU count: other work on the machine skews absolute numbers (ratios less so). */
export function systemLoad() {
  const [one, five] = loadavg();
  return { load1: Math.round(one * 100) / 100, load5: Math.round(five * 100) / 100, cpus: cpus().length };
}

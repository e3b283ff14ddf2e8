// Copies uPlot from node_modules into ../ui/vendor (the dashboard loads
// nothing from node_modules or the internet at run time), with one patch:
// uPlot builds `new Intl.NumberFormat(navigator.language)` while its module
// loads, and WebKitGTK (the desktop window) reports the POSIX locale "C"
// as the language when LANG is unset or C (minimal installs, services,
// tests). That throws RangeError, the chart module never finishes loading,
// and the dashboard stays blank. The patch falls back to the default locale.
import { readFileSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(web, 'node_modules', 'uplot');
const out = join(web, '..', 'ui', 'vendor');
mkdirSync(out, { recursive: true });

const js = readFileSync(join(src, 'dist', 'uPlot.esm.js'), 'utf8');
const from = "const numFormatter = new Intl.NumberFormat(domEnv ? nav.language : 'en-US');";
const to = "const numFormatter = (() => { try { return new Intl.NumberFormat(domEnv ? nav.language : 'en-US'); } catch { return new Intl.NumberFormat(); } })(); // patched by web/scripts/vendor-ui.mjs";
if (!js.includes(from)) throw new Error('uPlot changed: the NumberFormat patch no longer applies; check the dashboard with LANG=C in the desktop window');
writeFileSync(join(out, 'uPlot.esm.js'), js.replace(from, to));
copyFileSync(join(src, 'dist', 'uPlot.min.css'), join(out, 'uPlot.min.css'));
copyFileSync(join(src, 'LICENSE'), join(out, 'uPlot.LICENSE'));
console.log(`vendored uPlot into ${out}`);

// The Grafana dashboard loads under file provisioning (no `__inputs` placeholders: every
// panel uses the `datasource` template variable of type datasource), and every metric its
// queries name is one that mailmoat exposes (checked against a real exposition).
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { Metrics } from '../../src/observe/metrics.js';

interface Target {
  refId: string;
  expr: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: { name: string; type: string; query: string }[] };
  panels: Panel[];
  [key: string]: unknown;
}

const text = await readFile('grafana/mailmoat-dashboard.json', 'utf8');
const dashboard = JSON.parse(text) as Dashboard;

t.test('provisionable: a datasource template variable, no import-time placeholders', async (t) => {
  t.notOk('__inputs' in dashboard, 'no __inputs (only the import dialog fills them)');
  t.notMatch(text, /\$\{DS_/, 'no ${DS_...} placeholder anywhere');
  t.match(dashboard, { uid: 'mailmoat', title: 'mailmoat', schemaVersion: Number });
  const variable = dashboard.templating.list.find((entry) => entry.name === 'datasource');
  t.match(variable, { type: 'datasource', query: 'prometheus' }, 'a datasource variable over Prometheus data sources');
  const ids = new Set<number>();
  for (const panel of dashboard.panels) {
    t.notOk(ids.has(panel.id), `panel id ${panel.id} is unique`);
    ids.add(panel.id);
    t.same(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, `${panel.title}: uses the variable`);
    t.ok(panel.gridPos.x + panel.gridPos.w <= 24, `${panel.title}: fits the 24-column grid`);
    t.ok(panel.targets.length > 0, `${panel.title}: has a query`);
    for (const target of panel.targets) t.same(target.datasource ?? panel.datasource, panel.datasource, `${panel.title} ${target.refId}: the same data source`);
  }
});

t.test('every metric a query names is exposed', async (t) => {
  const metrics = new Metrics();
  metrics.session('smtp');
  metrics.scannerUp('unix:/run/clamd.sock', true);
  const exposed = await metrics.registry.metrics();
  const names = new Set(exposed.split('\n').filter((line) => line !== '' && !line.startsWith('#')).map((line) => line.replace(/[{ ].*$/, '')));
  const declared = new Set(exposed.split('\n').filter((line) => line.startsWith('# TYPE ')).map((line) => line.split(' ')[2] ?? ''));
  for (const panel of dashboard.panels) {
    for (const target of panel.targets) {
      for (const name of target.expr.match(/\bmailmoat_[a-z0-9_]+/g) ?? []) {
        // A histogram's series exist once it has observations; its TYPE line always.
        t.ok(names.has(name) || declared.has(name.replace(/_(bucket|sum|count)$/, '')), `${panel.title}: ${name} is exposed`);
      }
    }
  }
});

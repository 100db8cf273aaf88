// Kubernetes manifests checked against the API's own schemas, offline, from the npm package
// kubernetes-models (generated from the Kubernetes OpenAPI document, 1.36 since its 5.0):
// - its JSON-schema validators (ajv, compiled in the package) check types, formats, enums and
//   required fields, as the API server would;
// - its TypeScript interfaces, generated from the same document, reject unknown fields: each
//   manifest becomes an object literal typed as its kind, and the compiler's excess-property
//   check reports any field the schema does not name, at any depth (what `kubectl apply
//   --validate=strict` refuses; the OpenAPI schemas themselves allow extra properties).
import ts from 'typescript';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';

export interface Manifest {
  /** file name and document index, for messages: "deployment.yaml#0" */
  where: string;
  doc: Record<string, unknown>;
}

interface Kind {
  validate: (data: Record<string, unknown>) => void;
  /** the module and the interface the strict check types the manifest as */
  module: string;
  type: string;
}

const byModel = (Model: new (data: object) => { validate(): void }) => (data: Record<string, unknown>) => new Model(data).validate();

/** The kinds the manifests use, by "apiVersion/kind". Any other kind is a problem, not a pass. */
const KINDS: Record<string, Kind> = {
  'v1/Namespace': { validate: byModel(Namespace), module: 'kubernetes-models/v1/Namespace', type: 'INamespace' },
  'v1/ConfigMap': { validate: byModel(ConfigMap), module: 'kubernetes-models/v1/ConfigMap', type: 'IConfigMap' },
  'v1/Service': { validate: byModel(Service), module: 'kubernetes-models/v1/Service', type: 'IService' },
  'apps/v1/Deployment': { validate: byModel(Deployment), module: 'kubernetes-models/apps/v1/Deployment', type: 'IDeployment' },
  'policy/v1/PodDisruptionBudget': { validate: byModel(PodDisruptionBudget), module: 'kubernetes-models/policy/v1/PodDisruptionBudget', type: 'IPodDisruptionBudget' },
};

const kindOf = (doc: Record<string, unknown>): string => `${String(doc.apiVersion)}/${String(doc.kind)}`;

/** Every schema problem of every manifest, as "where: message"; [] when all are valid. */
export function schemaProblems(manifests: readonly Manifest[]): string[] {
  const problems: string[] = [];
  for (const { where, doc } of manifests) {
    const kind = KINDS[kindOf(doc)];
    if (kind === undefined) {
      problems.push(`${where}: no schema for ${kindOf(doc)}`);
      continue;
    }
    try {
      kind.validate(doc);
    } catch (error) {
      problems.push(`${where}: ${(error as Error).message}`);
    }
  }
  return [...problems, ...unknownFieldProblems(manifests.filter(({ doc }) => KINDS[kindOf(doc)] !== undefined))];
}

/** The strict half: one virtual TypeScript file, one typed constant per manifest, compiled. */
function unknownFieldProblems(manifests: readonly Manifest[]): string[] {
  // A path inside the repository, so that kubernetes-models resolves from its node_modules.
  const file = join(process.cwd(), 'test', 'deploy', '__manifests__.ts');
  const imports = [...new Set(manifests.map(({ doc }) => KINDS[kindOf(doc)] as Kind))].map((kind) => `import type { ${kind.type} } from '${kind.module}';`);
  const starts: number[] = [];
  let text = `${imports.join('\n')}\n`;
  manifests.forEach(({ doc }, index) => {
    starts.push(text.length);
    text += `export const m${index}: ${(KINDS[kindOf(doc)] as Kind).type} = ${JSON.stringify(doc, null, 1)};\n`;
  });
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const readSource = host.getSourceFile.bind(host);
  const exists = host.fileExists.bind(host);
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, text, language) : readSource(name, language, ...rest));
  host.fileExists = (name) => name === file || exists(name);
  const diagnostics = ts.getPreEmitDiagnostics(ts.createProgram([file], options, host));
  return diagnostics.map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ');
    const at = diagnostic.start ?? 0;
    const index = starts.findLastIndex((start) => start <= at);
    const manifest = manifests[index];
    if (manifest === undefined || diagnostic.file?.fileName !== file) return `schema check: ${message}`;
    const path = pathAt(text.slice(starts[index], text.indexOf('\n', at)));
    return `${manifest.where}: ${path}: ${message}`;
  });
}

/** The JSON path of the field a diagnostic points at, from the pretty-printed text up to its line. */
function pathAt(before: string): string {
  const path: string[] = [];
  for (const line of before.split('\n').slice(1)) {
    const depth = line.length - line.trimStart().length;
    const key = /^\s*"([^"]+)":/.exec(line)?.[1];
    path.length = Math.min(path.length, depth - 1);
    if (key !== undefined) path[depth - 1] = key;
  }
  return path.filter((key) => key !== undefined).join('.');
}

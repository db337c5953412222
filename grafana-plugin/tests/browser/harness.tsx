// Harness page for the browser test. It loads the BUILT plugin bundle
// (dist/module.js, an AMD module as Grafana loads it) with the libraries
// Grafana provides at run time (@grafana/data, @grafana/ui, @grafana/runtime,
// react, rxjs), renders the plugin's ConfigEditor and QueryEditor, keeps their
// state like Grafana does, and shows that state as JSON so the test can see
// what an interaction changed.
import React, { ComponentType, useState } from 'react';
import { createRoot } from 'react-dom/client';
import * as grafanaData from '@grafana/data';
import * as grafanaRuntime from '@grafana/runtime';
import * as grafanaUI from '@grafana/ui';
import * as rxjs from 'rxjs';

type AnyProps = Record<string, unknown>;
interface LoadedPlugin {
  components: { ConfigEditor: ComponentType<AnyProps>; QueryEditor: ComponentType<AnyProps> };
}

const provided: Record<string, unknown> = {
  '@grafana/data': grafanaData,
  '@grafana/runtime': grafanaRuntime,
  '@grafana/ui': grafanaUI,
  react: React,
  rxjs,
  module: { uri: '/dist/module.js' },
};

const initialSettings = {
  id: 1,
  uid: 'junction',
  orgId: 1,
  name: 'Junction',
  type: 'junction-junction-datasource',
  typeName: 'Junction',
  typeLogoUrl: '',
  access: 'proxy',
  url: '',
  user: '',
  basicAuth: false,
  basicAuthUser: '',
  isDefault: false,
  jsonData: {},
  secureJsonFields: {},
  readOnly: false,
  withCredentials: false,
};

function Harness({ plugin }: { plugin: LoadedPlugin }) {
  const { ConfigEditor, QueryEditor } = plugin.components;
  const [options, setOptions] = useState<AnyProps>(initialSettings);
  const [query, setQuery] = useState<AnyProps>({ refId: 'A', queryType: 'alerts' });
  const [runs, setRuns] = useState(0);
  return (
    <div style={{ display: 'flex', gap: 32, padding: 16 }}>
      <section id="config" style={{ width: 640 }}>
        <h3>ConfigEditor</h3>
        <ConfigEditor options={options} onOptionsChange={setOptions} />
        <pre id="config-state">
          {JSON.stringify({ url: options.url, jsonData: options.jsonData, secureJsonData: options.secureJsonData })}
        </pre>
      </section>
      <section id="query" style={{ width: 720 }}>
        <h3>QueryEditor</h3>
        <QueryEditor query={query} onChange={setQuery} onRunQuery={() => setRuns((n) => n + 1)} datasource={{}} />
        <pre id="query-state">{JSON.stringify({ query, runs })}</pre>
      </section>
    </div>
  );
}

// An AMD define() that resolves the bundle's external dependencies.
const define = (deps: string[], factory: (...mods: unknown[]) => { plugin: LoadedPlugin }) => {
  const missing = deps.filter((d) => !(d in provided));
  if (missing.length > 0) {
    throw new Error(`dist/module.js needs modules the harness does not provide: ${missing.join(', ')}`);
  }
  const { plugin } = factory(...deps.map((d) => provided[d]));
  createRoot(document.getElementById('root')!).render(<Harness plugin={plugin} />);
};
define.amd = true;
(window as unknown as { define: typeof define }).define = define;

const script = document.createElement('script');
script.src = '/dist/module.js';
document.head.appendChild(script);

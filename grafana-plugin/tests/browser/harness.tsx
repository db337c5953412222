// Harness page for the browser test: renders the plugin's ConfigEditor and
// QueryEditor with real @grafana/ui, keeps their state like Grafana does, and
// shows that state as JSON so the test can see what an interaction changed.
import React, { useState } from 'react';
import { createRoot } from 'react-dom/client';
import { DataSourceSettings } from '@grafana/data';

import { ConfigEditor } from '../../src/components/ConfigEditor';
import { QueryEditor } from '../../src/components/QueryEditor';
import { DataSource } from '../../src/datasource';
import { JunctionOptions, JunctionQuery, JunctionSecureJsonData } from '../../src/types';

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
  database: '',
  basicAuth: false,
  basicAuthUser: '',
  isDefault: false,
  jsonData: {},
  secureJsonFields: {},
  readOnly: false,
  withCredentials: false,
} as unknown as DataSourceSettings<JunctionOptions, JunctionSecureJsonData>;

function Harness() {
  const [options, setOptions] = useState(initialSettings);
  const [query, setQuery] = useState<JunctionQuery>({ refId: 'A', queryType: 'alerts' });
  const [runs, setRuns] = useState(0);
  return (
    <div style={{ display: 'flex', gap: 32, padding: 16 }}>
      <section id="config" style={{ width: 640 }}>
        <h3>ConfigEditor</h3>
        <ConfigEditor options={options} onOptionsChange={setOptions} />
        <pre id="config-state">{JSON.stringify({ url: options.url, jsonData: options.jsonData, secureJsonData: options.secureJsonData })}</pre>
      </section>
      <section id="query" style={{ width: 720 }}>
        <h3>QueryEditor</h3>
        <QueryEditor
          query={query}
          onChange={setQuery}
          onRunQuery={() => setRuns((n) => n + 1)}
          datasource={{} as DataSource}
        />
        <pre id="query-state">{JSON.stringify({ query, runs })}</pre>
      </section>
    </div>
  );
}

createRoot(document.getElementById('root')!).render(<Harness />);

import { plugin } from './module';
import { DataSource } from './datasource';
import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import pluginJson from './plugin.json';

describe('module', () => {
  it('wires the data source class and editors', () => {
    expect(plugin.DataSourceClass).toBe(DataSource);
    expect(plugin.components.ConfigEditor).toBe(ConfigEditor);
    expect(plugin.components.QueryEditor).toBe(QueryEditor);
  });

  it('declares a backend with alerting and streaming', () => {
    expect(pluginJson).toMatchObject({
      id: 'junction-junction-datasource',
      backend: true,
      alerting: true,
      streaming: true,
      executable: 'gpx_junction',
    });
  });
});

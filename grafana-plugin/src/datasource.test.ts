import { DataQueryRequest, DataSourceInstanceSettings, dateTime, LiveChannelScope } from '@grafana/data';
import { of } from 'rxjs';

import { DataSource, JunctionVariableSupport, parseVariableQuery, streamPath } from './datasource';
import { JunctionOptions, JunctionQuery } from './types';

const getDataStream = jest.fn();
const replace = jest.fn((v: string) => v.replace('$entity', 'service:shop/checkout'));

jest.mock('@grafana/runtime', () => ({
  ...jest.requireActual('@grafana/runtime'),
  getTemplateSrv: () => ({ replace }),
  getGrafanaLiveSrv: () => ({ getDataStream }),
}));

const settings = {
  id: 1,
  uid: 'junction-uid',
  type: 'junction-junction-datasource',
  name: 'Junction',
  jsonData: {},
  meta: { id: 'junction-junction-datasource' },
  access: 'proxy',
  readOnly: false,
} as unknown as DataSourceInstanceSettings<JunctionOptions>;

function request(targets: JunctionQuery[]): DataQueryRequest<JunctionQuery> {
  const now = dateTime();
  return {
    requestId: 'r1',
    interval: '1m',
    intervalMs: 60000,
    range: { from: now, to: now, raw: { from: 'now-1h', to: 'now' } },
    scopedVars: {},
    targets,
    timezone: 'utc',
    app: 'dashboard',
    startTime: 0,
  } as DataQueryRequest<JunctionQuery>;
}

describe('streamPath', () => {
  it('encodes the filter as the backend decodes it (same string as pkg/plugin TestStreamPathMatchesFrontend)', () => {
    expect(streamPath({ severity: 'warning', entity: 'service:shop/frontend' })).toBe(
      'alerts/eyJzZXZlcml0eSI6Indhcm5pbmciLCJlbnRpdHkiOiJzZXJ2aWNlOnNob3AvZnJvbnRlbmQifQ'
    );
  });
  it('is plain "alerts" without a filter and uses only Live path characters', () => {
    expect(streamPath({})).toBe('alerts');
    expect(streamPath({ entity: 'database:postgresql/pg:5432/orders?x=1&y=ü' })).toMatch(/^alerts\/[A-Za-z0-9_-]+$/);
  });
});

describe('parseVariableQuery', () => {
  it.each([
    ['entity-types', { kind: 'entityTypes' }],
    ['entities', { kind: 'entities', entityType: undefined }],
    ['entities(service)', { kind: 'entities', entityType: 'service' }],
    ['features(service:shop/checkout)', { kind: 'features', entity: 'service:shop/checkout' }],
  ])('%s', (input, want) => {
    expect(parseVariableQuery(input)).toEqual(want);
  });
  it('rejects an unknown query with the accepted forms', () => {
    expect(() => parseVariableQuery('nodes')).toThrow(/entity-types, entities\(<type>\) or features/);
  });
});

describe('DataSource', () => {
  beforeEach(() => {
    getDataStream.mockReset();
    replace.mockClear();
  });

  it('interpolates template variables in the fields the backend reads', () => {
    const ds = new DataSource(settings);
    const q = ds.applyTemplateVariables(
      { refId: 'A', queryType: 'series', entity: '$entity', feature: 'latency.p99_ms' },
      {}
    );
    expect(q.entity).toBe('service:shop/checkout');
    expect(replace).toHaveBeenCalledWith('$entity', {}, 'csv');
  });

  it('skips queries that cannot run', () => {
    const ds = new DataSource(settings);
    expect(ds.filterQuery({ refId: 'A', queryType: 'series', entity: 'x' })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', queryType: 'series', entity: 'x', feature: 'y' })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', queryType: 'evidence' })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', queryType: 'alerts', hide: true })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', queryType: 'graph' })).toBe(true);
  });

  it('subscribes live alert queries to the backend stream of this data source', (done) => {
    getDataStream.mockReturnValue(of({ data: ['frame'] }));
    const ds = new DataSource(settings);
    ds.query(request([{ refId: 'A', queryType: 'alerts', live: true, severity: 'critical' }])).subscribe({
      next: (res) => expect(res.data).toEqual(['frame']),
      complete: () => {
        expect(getDataStream).toHaveBeenCalledTimes(1);
        const addr = getDataStream.mock.calls[0][0].addr;
        expect(addr).toEqual({
          scope: LiveChannelScope.DataSource,
          stream: 'junction-uid',
          path: streamPath({ severity: 'critical' }),
        });
        done();
      },
    });
  });

  it('answers variable queries from the backend resources', async () => {
    const ds = new DataSource(settings);
    const getResource = jest
      .spyOn(ds, 'getResource')
      .mockResolvedValue([{ text: 'orders', value: 'database:postgresql/pg:5432/orders' }]);
    const values = await ds.metricFindQuery({ kind: 'entities', entityType: 'database', search: 'ord' });
    expect(getResource).toHaveBeenCalledWith('entities', { type: 'database', q: 'ord' });
    expect(values).toEqual([{ text: 'orders', value: 'database:postgresql/pg:5432/orders' }]);
    await ds.metricFindQuery('features($entity)');
    expect(getResource).toHaveBeenLastCalledWith('features', { entity: 'service:shop/checkout' });
  });

  it('serves query variables through its custom variable support', (done) => {
    const ds = new DataSource(settings);
    jest.spyOn(ds, 'getResource').mockResolvedValue([{ text: 'service', value: 'service' }]);
    const req = { ...request([]), targets: [{ refId: 'V', kind: 'entityTypes' }] } as never;
    (ds.variables as JunctionVariableSupport).query(req).subscribe((res) => {
      expect(res.data).toEqual([{ text: 'service', value: 'service' }]);
      expect(ds.getResource).toHaveBeenCalledWith('entity-types');
      done();
    });
  });
});

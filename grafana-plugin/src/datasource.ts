import {
  CoreApp,
  CustomVariableSupport,
  DataQueryRequest,
  DataQueryResponse,
  DataSourceInstanceSettings,
  LiveChannelScope,
  MetricFindValue,
  ScopedVars,
} from '@grafana/data';
import { DataSourceWithBackend, getGrafanaLiveSrv, getTemplateSrv } from '@grafana/runtime';
import { from, map, merge, Observable } from 'rxjs';

import { VariableQueryEditor } from './components/VariableQueryEditor';

import { DEFAULT_QUERY, JunctionOptions, JunctionQuery, VariableDataQuery, VariableQuery } from './types';

/** The alert filter the backend's stream path carries (pkg/plugin AlertFilter). */
export interface AlertFilter {
  state?: string;
  severity?: string;
  kind?: string;
  entity?: string;
  rule?: string;
}

/**
 * streamPath is the Grafana Live path of the alert stream for a filter:
 * "alerts", or "alerts/<base64url of the filter JSON>" (Live paths allow only
 * a few characters, entity ids have more).
 */
export function streamPath(f: AlertFilter): string {
  const clean: Record<string, string> = {};
  for (const k of ['state', 'severity', 'kind', 'entity', 'rule'] as const) {
    if (f[k]) {
      clean[k] = f[k] as string;
    }
  }
  if (Object.keys(clean).length === 0) {
    return 'alerts';
  }
  const bytes = new TextEncoder().encode(JSON.stringify(clean));
  let bin = '';
  bytes.forEach((b) => (bin += String.fromCharCode(b)));
  return 'alerts/' + btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * parseVariableQuery accepts the editor's object or a string:
 * "entity-types", "entities", "entities(service)", "features(service:shop/checkout)".
 */
export function parseVariableQuery(q: VariableQuery | string): VariableQuery {
  if (typeof q !== 'string') {
    return q;
  }
  const m = /^\s*([a-z-]+)\s*(?:\((.*)\))?\s*$/.exec(q);
  const arg = m?.[2]?.trim() || undefined;
  switch (m?.[1]) {
    case 'entity-types':
      return { kind: 'entityTypes' };
    case 'entities':
      return { kind: 'entities', entityType: arg };
    case 'features':
      return { kind: 'features', entity: arg };
  }
  throw new Error(`Unknown variable query "${q}": use entity-types, entities(<type>) or features(<entity id>)`);
}

export class DataSource extends DataSourceWithBackend<JunctionQuery, JunctionOptions> {
  constructor(instanceSettings: DataSourceInstanceSettings<JunctionOptions>) {
    super(instanceSettings);
    this.variables = new JunctionVariableSupport(this);
  }

  getDefaultQuery(_: CoreApp): Partial<JunctionQuery> {
    return DEFAULT_QUERY;
  }

  applyTemplateVariables(query: JunctionQuery, scopedVars: ScopedVars): JunctionQuery {
    const t = getTemplateSrv();
    const r = (v?: string, format?: string) => (v ? t.replace(v, scopedVars, format) : v);
    return {
      ...query,
      state: r(query.state, 'csv'),
      severity: r(query.severity),
      kind: r(query.kind),
      entity: r(query.entity, 'csv'),
      rule: r(query.rule),
      entityType: r(query.entityType),
      feature: r(query.feature),
      step: r(query.step),
      alertId: r(query.alertId),
    };
  }

  filterQuery(query: JunctionQuery): boolean {
    if (query.hide) {
      return false;
    }
    switch (query.queryType) {
      case 'series':
        return !!query.entity && !!query.feature;
      case 'evidence':
        return !!query.alertId;
    }
    return true;
  }

  /** Live alert queries subscribe to the backend's stream; the rest go to QueryData. */
  query(request: DataQueryRequest<JunctionQuery>): Observable<DataQueryResponse> {
    const live = request.targets.filter((q) => q.queryType === 'alerts' && q.live && !q.hide);
    if (live.length === 0) {
      return super.query(request);
    }
    const streams = live.map((q) => {
      const vars = this.applyTemplateVariables(q, request.scopedVars);
      return getGrafanaLiveSrv().getDataStream({
        key: `${request.requestId}-${q.refId}`,
        addr: { scope: LiveChannelScope.DataSource, stream: this.uid, path: streamPath(vars) },
      });
    });
    const rest = request.targets.filter((q) => !live.includes(q));
    if (rest.length > 0) {
      streams.push(super.query({ ...request, targets: rest }));
    }
    return merge(...streams);
  }

  /** Values of template variables: entity types, entities of a type, features of an entity. */
  async metricFindQuery(
    query: VariableQuery | string,
    options?: { scopedVars?: ScopedVars }
  ): Promise<MetricFindValue[]> {
    const q = parseVariableQuery(query);
    const t = getTemplateSrv();
    const r = (v?: string) => (v ? t.replace(v, options?.scopedVars) : undefined);
    let opts: Array<{ text: string; value: string }> = [];
    switch (q.kind) {
      case 'entityTypes':
        opts = await this.getResource('entity-types');
        break;
      case 'entities': {
        const params: Record<string, string> = {};
        const type = r(q.entityType);
        const search = r(q.search);
        if (type) {
          params.type = type;
        }
        if (search) {
          params.q = search;
        }
        opts = await this.getResource('entities', params);
        break;
      }
      case 'features':
        opts = await this.getResource('features', { entity: r(q.entity) ?? '' });
        break;
    }
    return opts.map((o) => ({ text: o.text, value: o.value }));
  }
}

/** Query variables of this data source: entity types, entities, features. */
export class JunctionVariableSupport extends CustomVariableSupport<DataSource, VariableDataQuery> {
  editor = VariableQueryEditor;

  constructor(private readonly datasource: DataSource) {
    super();
  }

  query(request: DataQueryRequest<VariableDataQuery>): Observable<DataQueryResponse> {
    return from(this.datasource.metricFindQuery(request.targets[0], { scopedVars: request.scopedVars })).pipe(
      map((values) => ({ data: values }))
    );
  }
}

import { DataSourceJsonData, SelectableValue } from '@grafana/data';
import { DataQuery } from '@grafana/schema';

/** What a query asks Junction for; the backend switches on it. */
export type QueryType = 'alerts' | 'alertTimeline' | 'graph' | 'series' | 'evidence' | 'rules';

export const QUERY_TYPES: Array<SelectableValue<QueryType>> = [
  {
    label: 'Alerts',
    value: 'alerts',
    description: 'Alert table: state, severity, kind, entity, blamed entity, summary',
  },
  { label: 'Alert timeline', value: 'alertTimeline', description: 'State of each alert over time' },
  { label: 'Graph', value: 'graph', description: 'Entity graph for the Node Graph panel' },
  { label: 'Entity series', value: 'series', description: 'A feature of entities over time (usable in alert rules)' },
  { label: 'Evidence', value: 'evidence', description: 'Traces, log samples and values behind one alert' },
  { label: 'Rules', value: 'rules', description: 'Rule health' },
];

export const ENTITY_TYPES = ['service', 'pod', 'database', 'proxy', 'relayer', 'stream'];

export interface JunctionQuery extends DataQuery {
  queryType?: QueryType;
  // alerts, alertTimeline
  state?: string;
  severity?: string;
  kind?: string;
  entity?: string; // series: one id or a comma list
  rule?: string;
  limit?: number;
  live?: boolean;
  // graph
  entityType?: string;
  // series
  feature?: string;
  step?: string;
  // evidence
  alertId?: string;
}

export const DEFAULT_QUERY: Partial<JunctionQuery> = {
  queryType: 'alerts',
};

/** Plain settings, stored in jsonData. */
export interface JunctionOptions extends DataSourceJsonData {
  tlsSkipVerify?: boolean;
  tlsAuth?: boolean;
  tlsAuthWithCACert?: boolean;
  tlsServerName?: string;
  tracingDatasourceUid?: string;
  tracingQueryType?: string;
  timeoutSeconds?: number;
}

/** Secret settings: written once, only the backend reads them. */
export interface JunctionSecureJsonData {
  bearerToken?: string;
  tlsClientCert?: string;
  tlsClientKey?: string;
  tlsCACert?: string;
}

/** A template variable query, served by the backend's resources. */
export interface VariableQuery {
  kind: 'entityTypes' | 'entities' | 'features';
  entityType?: string;
  entity?: string;
  search?: string;
}

/** VariableQuery as Grafana stores it in a query variable. */
export type VariableDataQuery = VariableQuery & DataQuery;

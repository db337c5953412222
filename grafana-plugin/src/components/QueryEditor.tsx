import React, { ChangeEvent, useEffect, useState } from 'react';
import { InlineField, InlineSwitch, Input, RadioButtonGroup, Stack } from '@grafana/ui';
import { QueryEditorProps, SelectableValue } from '@grafana/data';

import { DataSource } from '../datasource';
import { ENTITY_TYPES, JunctionOptions, JunctionQuery, QUERY_TYPES, QueryType } from '../types';

type Props = QueryEditorProps<DataSource, JunctionQuery, JunctionOptions>;

const ENTITY_TYPE_OPTIONS: Array<SelectableValue<string>> = [
  { label: 'All types', value: '' },
  ...ENTITY_TYPES.map((t) => ({ label: t, value: t })),
];

interface Option {
  text: string;
  value: string;
}

/**
 * useSuggestions reads a backend resource (entities, features, alerts) for a
 * field's suggestion list. Suggestions are a help, not a requirement: when the
 * resource fails (no connection yet, old server) the field stays a plain input.
 */
function useSuggestions(datasource: DataSource, path: string | undefined, params?: Record<string, string>): Option[] {
  const [loaded, setLoaded] = useState<{ key: string; options: Option[] }>({ key: '', options: [] });
  const key = path ? path + JSON.stringify(params ?? {}) : '';
  useEffect(() => {
    if (!path || typeof datasource?.getResource !== 'function') {
      return;
    }
    let live = true;
    datasource
      .getResource<Option[]>(path, params)
      .then((o) => live && setLoaded({ key, options: Array.isArray(o) ? o : [] }))
      .catch(() => live && setLoaded({ key, options: [] }));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [datasource, key]);
  return key !== '' && loaded.key === key ? loaded.options : [];
}

/** A single concrete entity id, not a variable or a list. */
const isConcrete = (entity?: string) => !!entity && !/[$,{]/.test(entity);

/** QueryEditor picks the query type and shows the fields that type uses. */
export function QueryEditor({ query, onChange, onRunQuery, datasource }: Props) {
  const queryType: QueryType = query.queryType ?? 'alerts';
  const wantsEntities = queryType === 'series' || queryType === 'alerts' || queryType === 'alertTimeline';
  const entities = useSuggestions(datasource, wantsEntities ? 'entities' : undefined);
  const features = useSuggestions(
    datasource,
    queryType === 'series' && isConcrete(query.entity) ? 'features' : undefined,
    { entity: query.entity ?? '' }
  );
  const alerts = useSuggestions(datasource, queryType === 'evidence' ? 'alerts' : undefined);
  const suggestions: Partial<Record<keyof JunctionQuery, Option[]>> = {
    entity: entities,
    feature: features,
    alertId: alerts,
  };
  const set = (patch: Partial<JunctionQuery>, run = false) => {
    onChange({ ...query, ...patch });
    if (run) {
      onRunQuery();
    }
  };
  const text = (key: keyof JunctionQuery, label: string, placeholder: string, width = 24, tooltip?: string) => {
    const id = `junction-${query.refId}-${String(key)}`;
    const options = suggestions[key] ?? [];
    return (
      <React.Fragment key={id}>
        <InlineField label={label} htmlFor={id} tooltip={tooltip}>
          <Input
            id={id}
            aria-label={label}
            width={width}
            list={options.length > 0 ? `${id}-options` : undefined}
            value={(query[key] as string | undefined) ?? ''}
            placeholder={placeholder}
            onChange={(e: ChangeEvent<HTMLInputElement>) => set({ [key]: e.target.value })}
            onBlur={onRunQuery}
          />
        </InlineField>
        {options.length > 0 && (
          <datalist id={`${id}-options`} data-testid={`${String(key)}-suggestions`}>
            {options.map((o) => (
              <option key={o.value} value={o.value} label={o.text} />
            ))}
          </datalist>
        )}
      </React.Fragment>
    );
  };

  const filters = (
    <Stack gap={0.5} wrap="wrap">
      {text('state', 'State', 'firing,pending', 18, 'Comma list of pending, firing, resolved')}
      {text('severity', 'Severity', 'critical', 12)}
      {text('kind', 'Kind', 'bottleneck', 12)}
      {text('entity', 'Entity', '$entity or service:shop/checkout', 30, 'Alerting or blamed entity id')}
      {text('rule', 'Rule', 'ConnectionPoolSaturated', 24)}
    </Stack>
  );

  return (
    <Stack direction="column" gap={1}>
      <InlineField label="Query type">
        <RadioButtonGroup<QueryType>
          options={QUERY_TYPES}
          value={queryType}
          onChange={(v) => set({ queryType: v }, true)}
        />
      </InlineField>

      {(queryType === 'alerts' || queryType === 'alertTimeline') && filters}

      {queryType === 'alerts' && (
        <Stack gap={0.5}>
          <InlineField label="Limit" htmlFor="junction-limit" tooltip="At most this many alerts (server default 500)">
            <Input
              id="junction-limit"
              aria-label="Limit"
              type="number"
              width={10}
              min={0}
              value={query.limit ?? ''}
              onChange={(e: ChangeEvent<HTMLInputElement>) =>
                set({ limit: e.target.value === '' ? undefined : Math.max(0, parseInt(e.target.value, 10) || 0) })
              }
              onBlur={onRunQuery}
            />
          </InlineField>
          <InlineField label="Live" tooltip="Stream alert state changes as they happen">
            <InlineSwitch
              aria-label="Live"
              value={!!query.live}
              onChange={(e) => set({ live: e.currentTarget.checked }, true)}
            />
          </InlineField>
        </Stack>
      )}

      {queryType === 'graph' && (
        <InlineField label="Entity type" tooltip="Show only entities of this type">
          <RadioButtonGroup<string>
            options={ENTITY_TYPE_OPTIONS}
            value={query.entityType ?? ''}
            onChange={(v) => set({ entityType: v || undefined }, true)}
          />
        </InlineField>
      )}

      {queryType === 'series' && (
        <Stack gap={0.5} wrap="wrap">
          {text('entity', 'Entity', '$entity or service:shop/checkout', 36, 'Entity id, a comma list, or a variable')}
          {text('feature', 'Feature', 'latency.p99_ms', 24, 'Feature name of the entity graph')}
          {text('step', 'Step', 'auto', 10, 'Resolution, e.g. 15s or 1m; the panel interval when empty')}
        </Stack>
      )}

      {queryType === 'evidence' &&
        text(
          'alertId',
          'Alert id',
          'database/ConnectionPoolSaturated@service:shop/checkout',
          60,
          'Id of the alert to explain'
        )}
    </Stack>
  );
}

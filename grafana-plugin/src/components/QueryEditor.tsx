import React, { ChangeEvent } from 'react';
import { InlineField, InlineSwitch, Input, RadioButtonGroup, Stack } from '@grafana/ui';
import { QueryEditorProps, SelectableValue } from '@grafana/data';

import { DataSource } from '../datasource';
import { ENTITY_TYPES, JunctionOptions, JunctionQuery, QUERY_TYPES, QueryType } from '../types';

type Props = QueryEditorProps<DataSource, JunctionQuery, JunctionOptions>;

const ENTITY_TYPE_OPTIONS: Array<SelectableValue<string>> = [
  { label: 'All types', value: '' },
  ...ENTITY_TYPES.map((t) => ({ label: t, value: t })),
];

/** QueryEditor picks the query type and shows the fields that type uses. */
export function QueryEditor({ query, onChange, onRunQuery }: Props) {
  const queryType: QueryType = query.queryType ?? 'alerts';
  const set = (patch: Partial<JunctionQuery>, run = false) => {
    onChange({ ...query, ...patch });
    if (run) {
      onRunQuery();
    }
  };
  const text = (key: keyof JunctionQuery, label: string, placeholder: string, width = 24, tooltip?: string) => (
    <InlineField label={label} htmlFor={`junction-${String(key)}`} tooltip={tooltip}>
      <Input
        id={`junction-${String(key)}`}
        aria-label={label}
        width={width}
        value={(query[key] as string | undefined) ?? ''}
        placeholder={placeholder}
        onChange={(e: ChangeEvent<HTMLInputElement>) => set({ [key]: e.target.value })}
        onBlur={onRunQuery}
      />
    </InlineField>
  );

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
            <InlineSwitch aria-label="Live" value={!!query.live} onChange={(e) => set({ live: e.currentTarget.checked }, true)} />
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
        text('alertId', 'Alert id', 'database/ConnectionPoolSaturated@service:shop/checkout', 60, 'Id of the alert to explain')}
    </Stack>
  );
}

import React, { ChangeEvent } from 'react';
import { InlineField, Input, RadioButtonGroup, Stack } from '@grafana/ui';

import { VariableDataQuery, VariableQuery } from '../types';

interface Props {
  query: VariableDataQuery | string;
  onChange: (query: VariableDataQuery, definition: string) => void;
}

const KINDS: Array<{ label: string; value: VariableQuery['kind'] }> = [
  { label: 'Entity types', value: 'entityTypes' },
  { label: 'Entities', value: 'entities' },
  { label: 'Features', value: 'features' },
];

export function definition(q: VariableQuery): string {
  switch (q.kind) {
    case 'entityTypes':
      return 'entity-types';
    case 'entities':
      return `entities(${q.entityType ?? ''})${q.search ? ' matching ' + q.search : ''}`;
    case 'features':
      return `features(${q.entity ?? ''})`;
  }
}

/** VariableQueryEditor defines a template variable: entity types, entities of a type, or an entity's features. */
export function VariableQueryEditor({ query, onChange }: Props) {
  const q: VariableDataQuery =
    typeof query === 'string' || !query?.kind ? { refId: 'JunctionVariable', kind: 'entities' } : query;
  const set = (patch: Partial<VariableQuery>) => {
    const next = { ...q, ...patch };
    onChange(next, definition(next));
  };
  return (
    <Stack direction="column" gap={1}>
      <InlineField label="Values" labelWidth={16}>
        <RadioButtonGroup options={KINDS} value={q.kind} onChange={(kind) => set({ kind })} />
      </InlineField>
      {q.kind === 'entities' && (
        <>
          <InlineField label="Entity type" labelWidth={16} htmlFor="junction-var-type">
            <Input
              id="junction-var-type"
              aria-label="Entity type"
              width={24}
              value={q.entityType ?? ''}
              placeholder="service or $type"
              onChange={(e: ChangeEvent<HTMLInputElement>) => set({ entityType: e.target.value })}
            />
          </InlineField>
          <InlineField label="Matching" labelWidth={16} htmlFor="junction-var-search">
            <Input
              id="junction-var-search"
              aria-label="Matching"
              width={24}
              value={q.search ?? ''}
              placeholder="substring of id or name"
              onChange={(e: ChangeEvent<HTMLInputElement>) => set({ search: e.target.value })}
            />
          </InlineField>
        </>
      )}
      {q.kind === 'features' && (
        <InlineField label="Entity" labelWidth={16} htmlFor="junction-var-entity">
          <Input
            id="junction-var-entity"
            aria-label="Entity"
            width={36}
            value={q.entity ?? ''}
            placeholder="$entity"
            onChange={(e: ChangeEvent<HTMLInputElement>) => set({ entity: e.target.value })}
          />
        </InlineField>
      )}
    </Stack>
  );
}

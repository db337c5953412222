import React from 'react';
import { fireEvent, render, screen } from '@testing-library/react';

import { QueryEditor } from './QueryEditor';
import { VariableQueryEditor } from './VariableQueryEditor';
import { DataSource } from '../datasource';
import { JunctionQuery } from '../types';

function renderEditor(query: JunctionQuery) {
  const onChange = jest.fn();
  const onRunQuery = jest.fn();
  const utils = render(
    <QueryEditor query={query} onChange={onChange} onRunQuery={onRunQuery} datasource={{} as DataSource} />
  );
  return { ...utils, onChange, onRunQuery };
}

describe('QueryEditor', () => {
  it('offers every query type and switches type', () => {
    const { onChange, onRunQuery } = renderEditor({ refId: 'A', queryType: 'alerts' });
    for (const label of ['Alerts', 'Alert timeline', 'Graph', 'Entity series', 'Evidence', 'Rules']) {
      expect(screen.getByText(label)).toBeInTheDocument();
    }
    fireEvent.click(screen.getByText('Entity series'));
    expect(onChange).toHaveBeenCalledWith({ refId: 'A', queryType: 'series' });
    expect(onRunQuery).toHaveBeenCalled();
  });

  it('shows alert filters and the live switch for alerts', () => {
    const { onChange } = renderEditor({ refId: 'A', queryType: 'alerts' });
    fireEvent.change(screen.getByLabelText('Severity'), { target: { value: 'critical' } });
    expect(onChange).toHaveBeenCalledWith({ refId: 'A', queryType: 'alerts', severity: 'critical' });
    fireEvent.click(screen.getByLabelText('Live'));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'alerts', live: true });
    expect(screen.queryByLabelText('Feature')).not.toBeInTheDocument();
  });

  it('shows entity and feature for series and runs on blur', () => {
    const { onChange, onRunQuery } = renderEditor({ refId: 'A', queryType: 'series', entity: '$entity' });
    expect(screen.getByLabelText('Entity')).toHaveValue('$entity');
    fireEvent.change(screen.getByLabelText('Feature'), { target: { value: 'latency.p99_ms' } });
    expect(onChange).toHaveBeenCalledWith({ refId: 'A', queryType: 'series', entity: '$entity', feature: 'latency.p99_ms' });
    fireEvent.blur(screen.getByLabelText('Feature'));
    expect(onRunQuery).toHaveBeenCalled();
    expect(screen.queryByLabelText('Live')).not.toBeInTheDocument();
  });

  it('filters the graph by entity type', () => {
    const { onChange, onRunQuery } = renderEditor({ refId: 'A', queryType: 'graph' });
    fireEvent.click(screen.getByText('database'));
    expect(onChange).toHaveBeenCalledWith({ refId: 'A', queryType: 'graph', entityType: 'database' });
    expect(onRunQuery).toHaveBeenCalled();
  });

  it('asks for the alert id of evidence', () => {
    const { onChange } = renderEditor({ refId: 'A', queryType: 'evidence' });
    fireEvent.change(screen.getByLabelText('Alert id'), { target: { value: 'a@b' } });
    expect(onChange).toHaveBeenCalledWith({ refId: 'A', queryType: 'evidence', alertId: 'a@b' });
  });
});

describe('VariableQueryEditor', () => {
  it('builds an entities query with its definition', () => {
    const onChange = jest.fn();
    render(<VariableQueryEditor query={{ refId: 'V', kind: 'entities' }} onChange={onChange} />);
    fireEvent.change(screen.getByLabelText('Entity type'), { target: { value: 'database' } });
    expect(onChange).toHaveBeenCalledWith({ refId: 'V', kind: 'entities', entityType: 'database' }, 'entities(database)');
    fireEvent.click(screen.getByText('Features'));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'V', kind: 'features' }, 'features()');
  });
});

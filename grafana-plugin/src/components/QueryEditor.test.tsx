import React from 'react';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';

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
    expect(onChange).toHaveBeenCalledWith({
      refId: 'A',
      queryType: 'series',
      entity: '$entity',
      feature: 'latency.p99_ms',
    });
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
    expect(onChange).toHaveBeenCalledWith(
      { refId: 'V', kind: 'entities', entityType: 'database' },
      'entities(database)'
    );
    fireEvent.click(screen.getByText('Features'));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'V', kind: 'features' }, 'features()');
  });
});

describe('QueryEditor suggestions', () => {
  it('suggests entities and then the features of the chosen entity from the backend resources', async () => {
    const getResource = jest.fn((path: string, params?: Record<string, string>) => {
      if (path === 'entities') {
        return Promise.resolve([{ text: 'checkout', value: 'service:shop/checkout' }]);
      }
      if (path === 'features' && params?.entity === 'service:shop/checkout') {
        return Promise.resolve([{ text: 'latency.p99_ms', value: 'latency.p99_ms' }]);
      }
      return Promise.reject(new Error('unexpected ' + path));
    });
    const ds = { getResource } as unknown as DataSource;
    render(
      <QueryEditor
        query={{ refId: 'A', queryType: 'series', entity: 'service:shop/checkout' }}
        onChange={jest.fn()}
        onRunQuery={jest.fn()}
        datasource={ds}
      />
    );
    const entities = await screen.findByTestId('entity-suggestions');
    expect(entities.querySelector('option')).toHaveAttribute('value', 'service:shop/checkout');
    const features = await screen.findByTestId('feature-suggestions');
    expect(features.querySelector('option')).toHaveAttribute('value', 'latency.p99_ms');
    expect(getResource).toHaveBeenCalledWith('features', { entity: 'service:shop/checkout' });
  });

  it('does not ask for features of a variable and stays usable when resources fail', async () => {
    const getResource = jest.fn(() => Promise.reject(new Error('no connection')));
    render(
      <QueryEditor
        query={{ refId: 'A', queryType: 'series', entity: '$entity' }}
        onChange={jest.fn()}
        onRunQuery={jest.fn()}
        datasource={{ getResource } as unknown as DataSource}
      />
    );
    await waitFor(() => expect(getResource).toHaveBeenCalledWith('entities', undefined));
    expect(getResource).not.toHaveBeenCalledWith('features', expect.anything());
    expect(screen.queryByTestId('entity-suggestions')).not.toBeInTheDocument();
    expect(screen.getByLabelText('Feature')).toBeInTheDocument();
  });

  it('suggests alert ids for evidence', async () => {
    const getResource = jest.fn(() =>
      Promise.resolve([
        {
          text: 'ConnectionPoolSaturated on checkout (firing)',
          value: 'database/ConnectionPoolSaturated@service:shop/checkout',
        },
      ])
    );
    render(
      <QueryEditor
        query={{ refId: 'B', queryType: 'evidence' }}
        onChange={jest.fn()}
        onRunQuery={jest.fn()}
        datasource={{ getResource } as unknown as DataSource}
      />
    );
    const list = await screen.findByTestId('alertId-suggestions');
    expect(list.querySelector('option')).toHaveAttribute('label', 'ConnectionPoolSaturated on checkout (firing)');
    expect(getResource).toHaveBeenCalledWith('alerts', undefined);
  });
});

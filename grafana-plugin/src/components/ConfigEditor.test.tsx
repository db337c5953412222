import React from 'react';
import { fireEvent, render, screen } from '@testing-library/react';
import { DataSourceSettings } from '@grafana/data';

import { ConfigEditor } from './ConfigEditor';
import { JunctionOptions, JunctionSecureJsonData } from '../types';

type Settings = DataSourceSettings<JunctionOptions, JunctionSecureJsonData>;

function settings(patch: Partial<Settings> = {}): Settings {
  return {
    id: 1,
    uid: 'j',
    orgId: 1,
    name: 'Junction',
    type: 'junction-junction-datasource',
    typeName: 'Junction',
    typeLogoUrl: '',
    access: 'proxy',
    url: 'http://127.0.0.1:8480',
    user: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    jsonData: {},
    secureJsonFields: {},
    readOnly: false,
    withCredentials: false,
    ...patch,
  } as Settings;
}

describe('ConfigEditor', () => {
  it('edits the URL', () => {
    const onOptionsChange = jest.fn();
    render(<ConfigEditor options={settings()} onOptionsChange={onOptionsChange} />);
    fireEvent.change(screen.getByLabelText('URL'), { target: { value: 'https://junction:8480' } });
    expect(onOptionsChange).toHaveBeenCalledWith(expect.objectContaining({ url: 'https://junction:8480' }));
  });

  it('flags a URL without http(s)', () => {
    render(<ConfigEditor options={settings({ url: 'junction:8480' })} onOptionsChange={jest.fn()} />);
    expect(screen.getByText('The URL must start with http:// or https://')).toBeInTheDocument();
  });

  it('keeps the bearer token in secureJsonData, never in jsonData', () => {
    const onOptionsChange = jest.fn();
    render(<ConfigEditor options={settings()} onOptionsChange={onOptionsChange} />);
    fireEvent.change(screen.getByLabelText('Bearer token'), { target: { value: 's3cret' } });
    const next = onOptionsChange.mock.calls[0][0] as Settings;
    expect(next.secureJsonData).toEqual({ bearerToken: 's3cret' });
    expect(JSON.stringify(next.jsonData)).not.toContain('s3cret');
  });

  it('resets a configured token', () => {
    const onOptionsChange = jest.fn();
    render(
      <ConfigEditor options={settings({ secureJsonFields: { bearerToken: true } })} onOptionsChange={onOptionsChange} />
    );
    expect(screen.getAllByDisplayValue('configured').length).toBeGreaterThan(0);
    fireEvent.click(screen.getAllByRole('button', { name: /reset/i })[0]);
    const next = onOptionsChange.mock.calls[0][0] as Settings;
    expect(next.secureJsonFields.bearerToken).toBe(false);
    expect(next.secureJsonData?.bearerToken).toBe('');
  });

  it('shows the client certificate fields only with client authentication on', () => {
    const { rerender } = render(<ConfigEditor options={settings()} onOptionsChange={jest.fn()} />);
    expect(screen.queryByLabelText('Client cert')).not.toBeInTheDocument();
    rerender(<ConfigEditor options={settings({ jsonData: { tlsAuth: true } })} onOptionsChange={jest.fn()} />);
    expect(screen.getByLabelText('Client cert')).toBeInTheDocument();
    expect(screen.getByLabelText('Client key')).toBeInTheDocument();
  });

  it('turns TLS verification off and sets the tracing data source', () => {
    const onOptionsChange = jest.fn();
    render(<ConfigEditor options={settings()} onOptionsChange={onOptionsChange} />);
    fireEvent.click(screen.getByLabelText('Skip certificate check'));
    expect(onOptionsChange.mock.calls[0][0].jsonData).toEqual({ tlsSkipVerify: true });
    fireEvent.change(screen.getByLabelText('Tracing data source UID'), { target: { value: 'tempo' } });
    expect(onOptionsChange.mock.calls[1][0].jsonData).toEqual({ tracingDatasourceUid: 'tempo' });
  });
});

import React, { ChangeEvent, FormEvent } from 'react';
import { FieldSet, InlineField, InlineSwitch, Input, SecretInput, SecretTextArea } from '@grafana/ui';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';

import { JunctionOptions, JunctionSecureJsonData } from '../types';

type Props = DataSourcePluginOptionsEditorProps<JunctionOptions, JunctionSecureJsonData>;
type SecureKey = keyof JunctionSecureJsonData;

const LABEL_WIDTH = 22;

/** ConfigEditor edits the Junction API address, bearer token, TLS and trace links. */
export function ConfigEditor(props: Props) {
  const { onOptionsChange, options } = props;
  const { jsonData, secureJsonFields, secureJsonData } = options;

  const setJSON = <K extends keyof JunctionOptions>(key: K, value: JunctionOptions[K]) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, [key]: value } });
  const setSecret = (key: SecureKey) => (e: FormEvent<HTMLInputElement | HTMLTextAreaElement>) =>
    onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, [key]: e.currentTarget.value } });
  const resetSecret = (key: SecureKey) => () =>
    onOptionsChange({
      ...options,
      secureJsonFields: { ...secureJsonFields, [key]: false },
      secureJsonData: { ...secureJsonData, [key]: '' },
    });

  return (
    <>
      <FieldSet label="Connection">
        <InlineField
          label="URL"
          labelWidth={LABEL_WIDTH}
          htmlFor="junction-url"
          tooltip="Address of the junction exporter's API, without /api/v1"
          invalid={!!options.url && !/^https?:\/\/[^/]+/.test(options.url)}
          error="The URL must start with http:// or https://"
        >
          <Input
            id="junction-url"
            aria-label="URL"
            width={40}
            value={options.url}
            placeholder="http://127.0.0.1:8480"
            onChange={(e: ChangeEvent<HTMLInputElement>) => onOptionsChange({ ...options, url: e.target.value })}
          />
        </InlineField>
        <InlineField
          label="Timeout (seconds)"
          labelWidth={LABEL_WIDTH}
          htmlFor="junction-timeout"
          tooltip="Bounds one API call; 30 when empty"
        >
          <Input
            id="junction-timeout"
            aria-label="Timeout"
            type="number"
            min={0}
            width={10}
            value={jsonData.timeoutSeconds ?? ''}
            placeholder="30"
            onChange={(e: ChangeEvent<HTMLInputElement>) =>
              setJSON(
                'timeoutSeconds',
                e.target.value === '' ? undefined : Math.max(0, parseInt(e.target.value, 10) || 0)
              )
            }
          />
        </InlineField>
      </FieldSet>

      <FieldSet label="Authentication">
        <InlineField
          label="Bearer token"
          labelWidth={LABEL_WIDTH}
          htmlFor="junction-token"
          tooltip="Sent as Authorization: Bearer; stored encrypted"
        >
          <SecretInput
            id="junction-token"
            aria-label="Bearer token"
            width={40}
            isConfigured={!!secureJsonFields?.bearerToken}
            value={secureJsonData?.bearerToken ?? ''}
            placeholder="token the junction exporter accepts"
            onReset={resetSecret('bearerToken')}
            onChange={setSecret('bearerToken')}
          />
        </InlineField>
      </FieldSet>

      <FieldSet label="TLS">
        <InlineField
          label="Skip certificate check"
          labelWidth={LABEL_WIDTH}
          tooltip="Do not verify the server certificate (testing only)"
        >
          <InlineSwitch
            aria-label="Skip certificate check"
            value={!!jsonData.tlsSkipVerify}
            onChange={(e) => setJSON('tlsSkipVerify', e.currentTarget.checked)}
          />
        </InlineField>
        <InlineField
          label="Server name"
          labelWidth={LABEL_WIDTH}
          htmlFor="junction-tls-server-name"
          tooltip="Name expected in the server certificate"
        >
          <Input
            id="junction-tls-server-name"
            aria-label="Server name"
            width={40}
            value={jsonData.tlsServerName ?? ''}
            onChange={(e: ChangeEvent<HTMLInputElement>) => setJSON('tlsServerName', e.target.value)}
          />
        </InlineField>
        <InlineField
          label="Client certificate"
          labelWidth={LABEL_WIDTH}
          tooltip="Present a client certificate (mutual TLS)"
        >
          <InlineSwitch
            aria-label="Client certificate"
            value={!!jsonData.tlsAuth}
            onChange={(e) => setJSON('tlsAuth', e.currentTarget.checked)}
          />
        </InlineField>
        {jsonData.tlsAuth && (
          <>
            <InlineField label="Client cert (PEM)" labelWidth={LABEL_WIDTH}>
              <SecretTextArea
                aria-label="Client cert"
                cols={50}
                rows={4}
                isConfigured={!!secureJsonFields?.tlsClientCert}
                value={secureJsonData?.tlsClientCert ?? ''}
                placeholder="-----BEGIN CERTIFICATE-----"
                onReset={resetSecret('tlsClientCert')}
                onChange={setSecret('tlsClientCert')}
              />
            </InlineField>
            <InlineField label="Client key (PEM)" labelWidth={LABEL_WIDTH}>
              <SecretTextArea
                aria-label="Client key"
                cols={50}
                rows={4}
                isConfigured={!!secureJsonFields?.tlsClientKey}
                value={secureJsonData?.tlsClientKey ?? ''}
                placeholder="-----BEGIN PRIVATE KEY-----"
                onReset={resetSecret('tlsClientKey')}
                onChange={setSecret('tlsClientKey')}
              />
            </InlineField>
          </>
        )}
        <InlineField label="With CA certificate" labelWidth={LABEL_WIDTH} tooltip="Verify the server with this CA">
          <InlineSwitch
            aria-label="With CA certificate"
            value={!!jsonData.tlsAuthWithCACert}
            onChange={(e) => setJSON('tlsAuthWithCACert', e.currentTarget.checked)}
          />
        </InlineField>
        {jsonData.tlsAuthWithCACert && (
          <InlineField label="CA cert (PEM)" labelWidth={LABEL_WIDTH}>
            <SecretTextArea
              aria-label="CA cert"
              cols={50}
              rows={4}
              isConfigured={!!secureJsonFields?.tlsCACert}
              value={secureJsonData?.tlsCACert ?? ''}
              placeholder="-----BEGIN CERTIFICATE-----"
              onReset={resetSecret('tlsCACert')}
              onChange={setSecret('tlsCACert')}
            />
          </InlineField>
        )}
      </FieldSet>

      <FieldSet label="Trace links">
        <InlineField
          label="Tracing data source UID"
          labelWidth={LABEL_WIDTH}
          htmlFor="junction-tracing-uid"
          tooltip="Trace ids in evidence link to this data source (e.g. Tempo)"
        >
          <Input
            id="junction-tracing-uid"
            aria-label="Tracing data source UID"
            width={40}
            value={jsonData.tracingDatasourceUid ?? ''}
            placeholder="tempo"
            onChange={(e: ChangeEvent<HTMLInputElement>) => setJSON('tracingDatasourceUid', e.target.value)}
          />
        </InlineField>
        <InlineField
          label="Trace query type"
          labelWidth={LABEL_WIDTH}
          htmlFor="junction-tracing-query-type"
          tooltip="queryType of the trace link (Tempo: traceql; leave empty for Jaeger)"
        >
          <Input
            id="junction-tracing-query-type"
            aria-label="Trace query type"
            width={20}
            value={jsonData.tracingQueryType ?? 'traceql'}
            onChange={(e: ChangeEvent<HTMLInputElement>) => setJSON('tracingQueryType', e.target.value)}
          />
        </InlineField>
      </FieldSet>
    </>
  );
}

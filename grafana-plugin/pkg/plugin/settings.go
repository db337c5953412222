package plugin

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// Names of the decrypted secure JSON keys. Tokens and keys never live in the
// plain JSON data.
const (
	secureBearerToken   = "bearerToken"
	secureTLSClientCert = "tlsClientCert"
	secureTLSClientKey  = "tlsClientKey"
	secureTLSCACert     = "tlsCACert"
)

const (
	// defaultTimeout bounds one call to the Junction API (streams excepted).
	defaultTimeout = 30 * time.Second
	// defaultTracingQueryType is the query type Tempo expects for a trace id.
	defaultTracingQueryType = "traceql"
)

// JSONData is the plain (unencrypted) part of the data source settings, as
// the ConfigEditor writes it into jsonData.
type JSONData struct {
	// URL is used when the data source's top-level URL is empty.
	URL string `json:"url,omitempty"`
	// TLSSkipVerify disables server certificate verification.
	TLSSkipVerify bool `json:"tlsSkipVerify,omitempty"`
	// TLSAuth presents the client certificate from secure JSON.
	TLSAuth bool `json:"tlsAuth,omitempty"`
	// TLSAuthWithCACert verifies the server with the CA from secure JSON.
	TLSAuthWithCACert bool `json:"tlsAuthWithCACert,omitempty"`
	// TLSServerName overrides the name checked in the server certificate.
	TLSServerName string `json:"tlsServerName,omitempty"`
	// TracingDatasourceUID is the data source that trace id links open.
	TracingDatasourceUID string `json:"tracingDatasourceUid,omitempty"`
	// TracingQueryType is put into the trace link's query (Tempo: traceql).
	TracingQueryType *string `json:"tracingQueryType,omitempty"`
	// TimeoutSeconds bounds one API call; 0 means 30 s.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
}

// Settings are the parsed, validated data source settings.
type Settings struct {
	URL                  *url.URL
	BearerToken          string
	TLSSkipVerify        bool
	TLSServerName        string
	TLSClientCert        string
	TLSClientKey         string
	TLSCACert            string
	TracingDatasourceUID string
	TracingQueryType     string
	Timeout              time.Duration
}

// LoadSettings parses the instance settings that Grafana hands the plugin.
func LoadSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	var jd JSONData
	if len(s.JSONData) > 0 {
		if err := json.Unmarshal(s.JSONData, &jd); err != nil {
			return Settings{}, fmt.Errorf("data source jsonData is not valid JSON: %w", err)
		}
	}
	raw := strings.TrimSpace(s.URL)
	if raw == "" {
		raw = strings.TrimSpace(jd.URL)
	}
	if raw == "" {
		return Settings{}, errors.New("URL is empty: set the Junction API address, e.g. http://127.0.0.1:8480")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Settings{}, fmt.Errorf("URL %q is not valid: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Settings{}, fmt.Errorf("URL %q must start with http:// or https://", raw)
	}
	if u.Host == "" {
		return Settings{}, fmt.Errorf("URL %q has no host", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.Path = strings.TrimSuffix(u.Path, "/api/v1")

	st := Settings{
		URL:                  u,
		BearerToken:          s.DecryptedSecureJSONData[secureBearerToken],
		TLSSkipVerify:        jd.TLSSkipVerify,
		TLSServerName:        jd.TLSServerName,
		TracingDatasourceUID: jd.TracingDatasourceUID,
		TracingQueryType:     defaultTracingQueryType,
		Timeout:              defaultTimeout,
	}
	if jd.TracingQueryType != nil {
		st.TracingQueryType = *jd.TracingQueryType
	}
	if jd.TimeoutSeconds < 0 {
		return Settings{}, fmt.Errorf("timeoutSeconds is %d: it must be 0 (default 30) or more", jd.TimeoutSeconds)
	}
	if jd.TimeoutSeconds > 0 {
		st.Timeout = time.Duration(jd.TimeoutSeconds) * time.Second
	}
	if jd.TLSAuth {
		st.TLSClientCert = s.DecryptedSecureJSONData[secureTLSClientCert]
		st.TLSClientKey = s.DecryptedSecureJSONData[secureTLSClientKey]
		if st.TLSClientCert == "" || st.TLSClientKey == "" {
			return Settings{}, errors.New("TLS client authentication is on but the client certificate or key is empty")
		}
	}
	if jd.TLSAuthWithCACert {
		st.TLSCACert = s.DecryptedSecureJSONData[secureTLSCACert]
		if st.TLSCACert == "" {
			return Settings{}, errors.New("\"with CA cert\" is on but the CA certificate is empty")
		}
	}
	return st, nil
}

// TLSConfig builds the client TLS configuration, or nil when the defaults do.
func (s Settings) TLSConfig() (*tls.Config, error) {
	if !s.TLSSkipVerify && s.TLSServerName == "" && s.TLSClientCert == "" && s.TLSCACert == "" {
		return nil, nil
	}
	cfg := &tls.Config{
		InsecureSkipVerify: s.TLSSkipVerify, //nolint:gosec // the user's explicit choice
		ServerName:         s.TLSServerName,
		MinVersion:         tls.VersionTLS12,
	}
	if s.TLSCACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(s.TLSCACert)) {
			return nil, errors.New("CA certificate: no PEM certificate found")
		}
		cfg.RootCAs = pool
	}
	if s.TLSClientCert != "" {
		cert, err := tls.X509KeyPair([]byte(s.TLSClientCert), []byte(s.TLSClientKey))
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate and key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// CheckHealth calls GET /api/v1/health and says in words what is wrong:
// misconfiguration, an unreachable URL, a rejected token, an API version this
// plugin does not speak, or a degraded store.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	fail := func(msg string) (*backend.CheckHealthResult, error) {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: msg}, nil
	}
	if d.settingsErr != nil {
		return fail("Settings: " + d.settingsErr.Error())
	}
	url := d.client.BaseURL()
	h, err := d.client.Health(ctx)
	var apiErr *APIError
	var unreach *UnreachableError
	switch {
	case errors.As(err, &unreach):
		return fail(fmt.Sprintf("Cannot reach Junction at %s: %v. Check the URL and that the junction exporter's API is listening there.", url, unreach.Err))
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized:
		if d.settings.BearerToken == "" {
			return fail(fmt.Sprintf("Junction at %s requires a bearer token (401 Unauthorized): set the Bearer token field.", url))
		}
		return fail(fmt.Sprintf("Junction at %s rejected the bearer token (401 Unauthorized): set the token the junction exporter's bearertokenauth accepts.", url))
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound:
		return fail(fmt.Sprintf("%s has no Junction API (404 for /api/v1/health): check that the URL points at the junction exporter's API address, without a path.", url))
	case err != nil:
		return fail(fmt.Sprintf("Junction at %s: %v", url, err))
	}
	if h.APIVersion != APIVersion {
		return fail(fmt.Sprintf("Junction at %s speaks API version %d (server %s); this plugin needs API version %d. Install the plugin release that matches the server.", url, h.APIVersion, h.Version, APIVersion))
	}
	if h.Status != "ok" {
		reason := h.Reason
		if reason == "" && !h.Storage.OK {
			reason = "storage at " + h.Storage.Path + " cannot write"
		}
		return fail(fmt.Sprintf("Junction %s at %s is %s: %s", h.Version, url, h.Status, reason))
	}
	return &backend.CheckHealthResult{
		Status:  backend.HealthStatusOk,
		Message: fmt.Sprintf("Junction %s at %s: API v%d, storage ok (%s free).", h.Version, url, h.APIVersion, humanBytes(h.Storage.FreeBytes)),
	}, nil
}

func humanBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

package plugin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// StreamPathAlerts is the Grafana Live path of the alert stream. A filter may
// follow as "alerts/<base64url of the AlertFilter JSON>", which keeps the
// channel path within Live's allowed characters.
const StreamPathAlerts = "alerts"

// ParseStreamPath reads the alert filter out of a Live channel path.
func ParseStreamPath(path string) (AlertFilter, error) {
	var f AlertFilter
	if path == StreamPathAlerts {
		return f, nil
	}
	enc, ok := strings.CutPrefix(path, StreamPathAlerts+"/")
	if !ok {
		return f, fmt.Errorf("unknown stream path %q: only %q is served", path, StreamPathAlerts)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(enc, "="))
	if err != nil {
		return f, fmt.Errorf("stream path %q: the filter is not base64url: %w", path, err)
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return f, fmt.Errorf("stream path %q: the filter is not JSON: %w", path, err)
	}
	return f, nil
}

// StreamPath builds the Live path for a filter (the frontend does the same).
func StreamPath(f AlertFilter) string {
	if f == (AlertFilter{}) {
		return StreamPathAlerts
	}
	raw, _ := json.Marshal(f)
	return StreamPathAlerts + "/" + base64.RawURLEncoding.EncodeToString(raw)
}

// SubscribeStream admits subscriptions to the alert stream.
func (d *Datasource) SubscribeStream(_ context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	if d.settingsErr != nil {
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusPermissionDenied}, nil
	}
	if _, err := ParseStreamPath(req.Path); err != nil {
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK}, nil
}

// PublishStream refuses: alerts come from Junction, not from browsers.
func (d *Datasource) PublishStream(context.Context, *backend.PublishStreamRequest) (*backend.PublishStreamResponse, error) {
	return &backend.PublishStreamResponse{Status: backend.PublishStreamStatusPermissionDenied}, nil
}

// RunStream follows GET /api/v1/stream and sends every alert state change as a
// one-row alerts frame, reconnecting with backoff until Grafana cancels ctx
// (the last subscriber left).
func (d *Datasource) RunStream(ctx context.Context, req *backend.RunStreamRequest, sender *backend.StreamSender) error {
	if d.settingsErr != nil {
		return d.settingsErr
	}
	f, err := ParseStreamPath(req.Path)
	if err != nil {
		return err
	}
	for failures := 0; ; failures++ {
		err := d.client.StreamAlerts(ctx, f, func(a Alert) error {
			failures = 0
			return sender.SendFrame(AlertsFrame([]Alert{a}, d.uid), data.IncludeAll)
		})
		if ctx.Err() != nil {
			return nil
		}
		delay := d.retryDelay(failures)
		d.logger.Warn("Junction alert stream interrupted; reconnecting", "error", err, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

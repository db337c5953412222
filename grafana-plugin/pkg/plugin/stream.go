package plugin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
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
// (the last subscriber left). After a reconnect it first sends the changes
// it missed, read from GET /api/v1/alerts since the stream broke, as the API
// asks clients to do.
func (d *Datasource) RunStream(ctx context.Context, req *backend.RunStreamRequest, sender *backend.StreamSender) error {
	if d.settingsErr != nil {
		return d.settingsErr
	}
	f, err := ParseStreamPath(req.Path)
	if err != nil {
		return err
	}
	send := func(a Alert) error {
		return sender.SendFrame(AlertsFrame([]Alert{a}, d.uid), data.IncludeAll)
	}
	// brokeAt is when the stream last broke, zero while nothing was missed.
	// It stays at the first break until a catch-up succeeds, so a flapping
	// connection never skips changes.
	var brokeAt time.Time
	for failures := 0; ; failures++ {
		opened := func() error {
			failures = 0
			if brokeAt.IsZero() {
				return nil
			}
			if err := d.catchUp(ctx, f, brokeAt, send); err != nil {
				return err
			}
			brokeAt = time.Time{}
			return nil
		}
		err := d.client.StreamAlerts(ctx, f, opened, send)
		if ctx.Err() != nil {
			return nil
		}
		if brokeAt.IsZero() {
			brokeAt = d.now()
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

// catchUp sends the alert changes since the stream broke, read from
// GET /api/v1/alerts, oldest first like the stream.
func (d *Datasource) catchUp(ctx context.Context, f AlertFilter, since time.Time, send func(Alert) error) error {
	f.Limit = 0
	missed, err := d.client.Alerts(ctx, f, since, d.now())
	if err != nil {
		return fmt.Errorf("reading the alert changes missed since %s: %w", since.Format(time.RFC3339), err)
	}
	sort.SliceStable(missed, func(i, j int) bool { return missed[i].Since().Before(missed[j].Since()) })
	for _, a := range missed {
		if a.Since().Before(since) {
			continue // changed before the break: the stream sent it
		}
		if err := send(a); err != nil {
			return err
		}
	}
	return nil
}

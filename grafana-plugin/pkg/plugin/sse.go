package plugin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// maxEventBytes bounds one server-sent event; a longer line is an error, not
// an unbounded buffer.
const maxEventBytes = 1 << 20

// StreamAlerts calls GET /api/v1/stream and hands every `event: alert` to fn
// until ctx ends, the server closes the stream (errStreamEnded) or fn fails.
// onOpen, when set, runs once the server has accepted the stream, before any
// event is read. Keepalive comments and other event types are skipped.
func (c *Client) StreamAlerts(ctx context.Context, f AlertFilter, onOpen func() error, fn func(Alert) error) error {
	req, err := c.newRequest(ctx, "/stream", f.Values())
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.streams.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &UnreachableError{URL: c.base.String(), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readAPIError(resp)
	}
	if onOpen != nil {
		if err := onOpen(); err != nil {
			return err
		}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), maxEventBytes)
	var event string
	var payload strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event == "alert" && payload.Len() > 0 {
				var a Alert
				if err := json.Unmarshal([]byte(payload.String()), &a); err != nil {
					return fmt.Errorf("decoding an alert event of the Junction stream: %w", err)
				}
				if err := fn(a); err != nil {
					return err
				}
			}
			event = ""
			payload.Reset()
		case strings.HasPrefix(line, ":"):
			// keepalive comment
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if payload.Len() > 0 {
				payload.WriteByte('\n')
			}
			payload.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("reading the Junction stream: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errStreamEnded
}

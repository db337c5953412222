package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/junction-sre/junction/alert"
)

// alertLogName is the alert log's file name under the data directory.
const alertLogName = "alerts.jsonl"

// Transition is one state change of an alert instance.
type Transition struct {
	Time  time.Time   `json:"time"`
	State alert.State `json:"state"`
}

// logEntry is one line of the alert log: an alert record as received, or,
// after compaction, an instance's latest record with its whole history.
type logEntry struct {
	Alert   alert.Alert  `json:"alert"`
	History []Transition `json:"history,omitempty"`
}

// instance is what is kept of one alert instance.
type instance struct {
	latest  alert.Alert
	history []Transition
}

func (in *instance) lastState() alert.State {
	if len(in.history) == 0 {
		return ""
	}
	return in.history[len(in.history)-1].State
}

// lastChange is when the instance last changed state.
func (in *instance) lastChange() time.Time {
	if len(in.history) == 0 {
		return in.latest.EvaluatedAt
	}
	return in.history[len(in.history)-1].Time
}

// AlertLogStats counts what the alert log did.
type AlertLogStats struct {
	Stored       int64 // records appended to the log
	Evicted      int64 // instances dropped because max_alert_instances was reached
	HistoryDrops int64 // transitions dropped because max_history was reached
	Corrupt      int64 // unreadable lines skipped at open
	OutOfOrder   int64 // records older than the instance's latest, ignored
}

// alertLog is the durable alert history: an append-only JSON-lines file,
// buffered and fsync'd by Flush, compacted when it outgrows maxBytes. The
// caller holds the store's alert lock.
type alertLog struct {
	path        string
	f           *os.File
	w           *bufio.Writer
	size        int64
	maxBytes    int64
	maxInst     int
	maxHistory  int
	retention   time.Duration
	instances   map[string]*instance
	stats       AlertLogStats
	lastErr     error
	scratch     bytes.Buffer
	needsSync   bool
	compactions int64
}

func openAlertLog(dir string, maxBytes int64, maxInst, maxHistory int, retention time.Duration, now time.Time) (*alertLog, error) {
	l := &alertLog{
		path: filepath.Join(dir, alertLogName), maxBytes: maxBytes, maxInst: maxInst,
		maxHistory: maxHistory, retention: retention, instances: make(map[string]*instance),
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	// Rewriting at open drops a torn last line, expired instances and
	// superseded records.
	if err := l.compact(now); err != nil {
		return nil, err
	}
	return l, nil
}

// load reads the log. A line that cannot be decoded (the torn tail of a
// write cut by a crash) is skipped and counted.
func (l *alertLog) load() error {
	f, err := os.Open(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: open alert log: %w", ErrStorage, err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var e logEntry
			if jerr := json.Unmarshal(line, &e); jerr != nil || e.Alert.ID == "" {
				l.stats.Corrupt++
			} else if e.History != nil {
				l.put(&instance{latest: e.Alert, history: e.History})
			} else {
				l.apply(e.Alert)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: read alert log %s: %w", ErrStorage, l.path, err)
		}
	}
}

// transitionTime is when a record's state began.
func transitionTime(a *alert.Alert) time.Time {
	var t time.Time
	switch a.State {
	case alert.StatePending:
		t = a.ActiveAt
	case alert.StateFiring:
		t = a.FiredAt
	case alert.StateResolved:
		t = a.ResolvedAt
	}
	if t.IsZero() {
		t = a.EvaluatedAt
	}
	return t
}

// apply folds one record into the instances; it reports whether the record
// changed the instance's state (a new instance counts as a change).
func (l *alertLog) apply(a alert.Alert) bool {
	in := l.instances[a.ID]
	if in == nil {
		in = &instance{latest: alert.Alert{ID: a.ID}}
		l.put(in)
	} else if a.EvaluatedAt.Before(in.latest.EvaluatedAt) {
		l.stats.OutOfOrder++
		return false
	}
	changed := in.lastState() != a.State
	if changed {
		in.history = append(in.history, Transition{Time: transitionTime(&a), State: a.State})
		if over := len(in.history) - l.maxHistory; over > 0 {
			in.history = append(in.history[:0], in.history[over:]...)
			l.stats.HistoryDrops += int64(over)
		}
	}
	in.latest = a
	return changed
}

// put adds an instance, evicting the one that changed least recently
// (preferring resolved ones) when the table is full.
func (l *alertLog) put(in *instance) {
	if _, ok := l.instances[in.latest.ID]; !ok && len(l.instances) >= l.maxInst {
		var victim *instance
		for _, c := range l.instances {
			if victim == nil ||
				(c.latest.State == alert.StateResolved) && victim.latest.State != alert.StateResolved ||
				(c.latest.State == alert.StateResolved) == (victim.latest.State == alert.StateResolved) && c.lastChange().Before(victim.lastChange()) {
				victim = c
			}
		}
		if victim != nil {
			delete(l.instances, victim.latest.ID)
			l.stats.Evicted++
		}
	}
	if in.latest.ID != "" {
		l.instances[in.latest.ID] = in
	}
}

// Append folds records in and appends those that changed an instance's
// state to the log (buffered until Flush). It returns the changed records.
func (l *alertLog) Append(alerts []alert.Alert, now time.Time) ([]alert.Alert, error) {
	var changed []alert.Alert
	for i := range alerts {
		if !l.apply(alerts[i]) {
			continue
		}
		changed = append(changed, alerts[i])
		if err := l.write(logEntry{Alert: alerts[i]}); err != nil {
			return changed, err
		}
		l.stats.Stored++
	}
	if l.size > l.maxBytes {
		if err := l.compact(now); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

func (l *alertLog) write(e logEntry) error {
	l.scratch.Reset()
	if err := json.NewEncoder(&l.scratch).Encode(e); err != nil {
		return fmt.Errorf("encode alert %s: %w", e.Alert.ID, err)
	}
	n, err := l.w.Write(l.scratch.Bytes())
	l.size += int64(n)
	l.needsSync = true
	if err != nil {
		l.writeFailed(err)
		return fmt.Errorf("%w: write alert log: %w", ErrStorage, err)
	}
	return nil
}

// writeFailed records err and resets the writer, whose errors are sticky,
// so that writing resumes once the disk has room again. What was buffered
// is lost; a partly written line is skipped at the next open.
func (l *alertLog) writeFailed(err error) {
	l.lastErr = err
	l.w.Reset(l.f)
}

// Flush writes buffered records and fsyncs the file.
func (l *alertLog) Flush() error {
	if !l.needsSync {
		return l.lastErr
	}
	if err := l.w.Flush(); err != nil {
		l.writeFailed(err)
		return fmt.Errorf("%w: write alert log: %w", ErrStorage, err)
	}
	if err := l.f.Sync(); err != nil {
		l.lastErr = err
		return fmt.Errorf("%w: fsync alert log: %w", ErrStorage, err)
	}
	l.needsSync = false
	l.lastErr = nil
	return nil
}

// compact rewrites the log as one line per kept instance (latest record
// and history), dropping instances that last changed before the retention,
// then swaps it in atomically.
func (l *alertLog) compact(now time.Time) error {
	cutoff := now.Add(-l.retention)
	ids := make([]string, 0, len(l.instances))
	for id, in := range l.instances {
		if in.latest.State == alert.StateResolved && in.lastChange().Before(cutoff) {
			delete(l.instances, id)
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if l.f != nil {
		if err := l.Flush(); err != nil {
			return err
		}
		_ = l.f.Close()
		l.f = nil
	}
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("%w: compact alert log: %w", ErrStorage, err)
	}
	l.f, l.w, l.size = f, bufio.NewWriterSize(f, 1<<16), 0
	for _, id := range ids {
		in := l.instances[id]
		if err := l.write(logEntry{Alert: in.latest, History: in.history}); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := l.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	_ = f.Close()
	if err := os.Rename(tmp, l.path); err != nil {
		return fmt.Errorf("%w: compact alert log: %w", ErrStorage, err)
	}
	if d, err := os.Open(filepath.Dir(l.path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	f, err = os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%w: reopen alert log: %w", ErrStorage, err)
	}
	l.f, l.w = f, bufio.NewWriterSize(f, 1<<16)
	l.compactions++
	return nil
}

// Close flushes and closes the file.
func (l *alertLog) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.Flush()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

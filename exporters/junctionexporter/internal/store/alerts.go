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
	"sync"
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
// buffered and fsync'd by Flush, compacted when it outgrows maxBytes.
//
// Its memory (instances, stats, size) is guarded by the store's alert
// lock; its file is not. Every operation that touches the file is split:
// under the alert lock it updates the memory, encodes what must be
// written and takes its place in line (a logJob); the job's run does the
// file I/O after the lock is released, once the job before it has run. So
// queries never wait for a write, an fsync or a compaction, and the file
// receives the records in the order the memory took them.
type alertLog struct {
	path        string
	size        int64 // bytes in the file once the jobs queued so far have run
	maxBytes    int64
	maxInst     int
	maxHistory  int
	retention   time.Duration
	instances   map[string]*instance
	stats       AlertLogStats
	needsSync   bool
	compactions int64
	// last is closed when the newest job has run.
	last chan struct{}
	file *logFile
}

// logFile is the open file; only jobs, one at a time, touch it.
type logFile struct {
	path string
	f    *os.File
	w    *bufio.Writer

	errMu   sync.Mutex
	lastErr error
}

func (lf *logFile) setErr(err error) {
	lf.errMu.Lock()
	lf.lastErr = err
	lf.errMu.Unlock()
}

func (lf *logFile) err() error {
	lf.errMu.Lock()
	defer lf.errMu.Unlock()
	return lf.lastErr
}

// logJob is one file operation in line: append lines, then (optionally)
// replace the file by a compacted one, then (optionally) fsync or close.
type logJob struct {
	file    *logFile
	wait    <-chan struct{}
	done    chan struct{}
	lines   []byte
	compact []byte // the whole compacted log; nil: no compaction
	sync    bool
	close   bool
}

// job returns a new job in line after the previous one. Callers hold the
// alert lock.
func (l *alertLog) job() *logJob {
	j := &logJob{file: l.file, wait: l.last, done: make(chan struct{})}
	l.last = j.done
	return j
}

// run does the job's file I/O once the previous job has run. Callers do
// not hold the alert lock.
func (j *logJob) run() error {
	if j == nil {
		return nil // nothing was queued
	}
	defer close(j.done)
	if j.wait != nil {
		<-j.wait
	}
	lf := j.file
	var errs []error
	if len(j.lines) > 0 && lf.f == nil {
		// A failed compaction left no file open: say so, as a write error.
		err := errors.New("the alert log is not open (it was closed, or a compaction failed)")
		lf.setErr(err)
		errs = append(errs, fmt.Errorf("%w: write alert log: %w", ErrStorage, err))
	}
	if len(j.lines) > 0 && lf.f != nil {
		if _, err := lf.w.Write(j.lines); err != nil {
			lf.writeFailed(err)
			errs = append(errs, fmt.Errorf("%w: write alert log: %w", ErrStorage, err))
		}
	}
	if j.compact != nil {
		if err := lf.replace(j.compact); err != nil {
			errs = append(errs, err)
		}
	}
	if (j.sync || j.close) && lf.f != nil {
		if err := lf.flush(); err != nil {
			errs = append(errs, err)
		}
	}
	if j.close && lf.f != nil {
		if err := lf.f.Close(); err != nil {
			errs = append(errs, err)
		}
		lf.f = nil
	}
	return errors.Join(errs...)
}

func openAlertLog(dir string, maxBytes int64, maxInst, maxHistory int, retention time.Duration, now time.Time) (*alertLog, error) {
	l := &alertLog{
		path: filepath.Join(dir, alertLogName), maxBytes: maxBytes, maxInst: maxInst,
		maxHistory: maxHistory, retention: retention, instances: make(map[string]*instance),
	}
	l.file = &logFile{path: l.path}
	if err := l.load(); err != nil {
		return nil, err
	}
	// Rewriting at open drops a torn last line, expired instances and
	// superseded records.
	j := l.job()
	if err := l.compactInto(j, now); err != nil {
		return nil, err
	}
	if err := j.run(); err != nil {
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

// Append folds records in and queues those that changed an instance's
// state for the log (buffered until Flush), compacting it when it outgrows
// maxBytes. It returns the changed records and the job that writes them,
// which the caller runs after releasing the alert lock.
func (l *alertLog) Append(alerts []alert.Alert, now time.Time) ([]alert.Alert, *logJob, error) {
	var changed []alert.Alert
	var lines bytes.Buffer
	var err error
	for i := range alerts {
		if !l.apply(alerts[i]) {
			continue
		}
		changed = append(changed, alerts[i])
		if err = l.encode(&lines, logEntry{Alert: alerts[i]}); err != nil {
			break // the lines encoded so far are still written
		}
		l.stats.Stored++
	}
	compact := l.size+int64(lines.Len()) > l.maxBytes
	if lines.Len() == 0 && !compact {
		return changed, nil, err // nothing for the file
	}
	j := l.job()
	j.lines = lines.Bytes()
	l.size += int64(len(j.lines))
	if len(j.lines) > 0 {
		l.needsSync = true
	}
	if compact {
		err = errors.Join(err, l.compactInto(j, now))
	}
	return changed, j, err
}

// encode appends e as one JSON line to dst; on error it appends nothing
// (json.Encoder writes a whole value or none).
func (l *alertLog) encode(dst *bytes.Buffer, e logEntry) error {
	if err := json.NewEncoder(dst).Encode(e); err != nil {
		return fmt.Errorf("encode alert %s: %w", e.Alert.ID, err)
	}
	return nil
}

// writeFailed records err and resets the writer, whose errors are sticky,
// so that writing resumes once the disk has room again. What was buffered
// is lost; a partly written line is skipped at the next open.
func (lf *logFile) writeFailed(err error) {
	lf.setErr(err)
	lf.w.Reset(lf.f)
}

// Flush queues writing the buffered records and fsyncing the file; the
// caller runs the job after releasing the alert lock. It returns nil when
// nothing was written since the last Flush.
func (l *alertLog) Flush() *logJob {
	if !l.needsSync {
		return nil
	}
	l.needsSync = false
	j := l.job()
	j.sync = true
	return j
}

// LastErr is the last write or fsync error, nil once a Flush succeeded.
func (l *alertLog) LastErr() error { return l.file.err() }

func (lf *logFile) flush() error {
	if err := lf.w.Flush(); err != nil {
		lf.writeFailed(err)
		return fmt.Errorf("%w: write alert log: %w", ErrStorage, err)
	}
	if err := lf.f.Sync(); err != nil {
		lf.setErr(err)
		return fmt.Errorf("%w: fsync alert log: %w", ErrStorage, err)
	}
	lf.setErr(nil)
	return nil
}

// compactInto drops instances that last changed before the retention and
// sets j to replace the log by one line per kept instance (latest record
// and history).
func (l *alertLog) compactInto(j *logJob, now time.Time) error {
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
	var b bytes.Buffer
	for _, id := range ids {
		in := l.instances[id]
		if err := l.encode(&b, logEntry{Alert: in.latest, History: in.history}); err != nil {
			return err
		}
	}
	// The compacted log holds every line queued so far: the job's own
	// lines are in it already.
	j.lines = nil
	j.compact = b.Bytes()
	if j.compact == nil {
		j.compact = []byte{}
	}
	l.size = int64(len(j.compact))
	l.needsSync = false
	l.compactions++
	return nil
}

// replace swaps in data as the whole log, atomically, and reopens it for
// appending.
func (lf *logFile) replace(data []byte) error {
	if lf.f != nil {
		if err := lf.flush(); err != nil {
			return err
		}
		_ = lf.f.Close()
		lf.f = nil
	}
	tmp := lf.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("%w: compact alert log: %w", ErrStorage, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		lf.setErr(err)
		return fmt.Errorf("%w: compact alert log: %w", ErrStorage, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		lf.setErr(err)
		return fmt.Errorf("%w: fsync alert log: %w", ErrStorage, err)
	}
	_ = f.Close()
	if err := os.Rename(tmp, lf.path); err != nil {
		return fmt.Errorf("%w: compact alert log: %w", ErrStorage, err)
	}
	if d, err := os.Open(filepath.Dir(lf.path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	f, err = os.OpenFile(lf.path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%w: reopen alert log: %w", ErrStorage, err)
	}
	lf.f, lf.w = f, bufio.NewWriterSize(f, 1<<16)
	lf.setErr(nil)
	return nil
}

// Close queues flushing and closing the file; the caller runs the job.
func (l *alertLog) Close() *logJob {
	j := l.job()
	j.close = true
	return j
}

//go:build linux

package realtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
)

// checkoutService is the upstream behind NGINX. It can be made slow, and
// it sheds (answers shedStatus) beyond maxInFlight concurrent requests, as
// a service with an overload guard does.
type checkoutService struct {
	delay       atomic.Int64 // nanoseconds per request
	maxInFlight atomic.Int64 // 0: no limit
	shedStatus  atomic.Int64 // status when over the limit (503 by default)
	inFlight    atomic.Int64
}

func (s *checkoutService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	if m := s.maxInFlight.Load(); m > 0 && n > m {
		code := int(s.shedStatus.Load())
		if code == 0 {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, "overloaded", code)
		return
	}
	if d := time.Duration(s.delay.Load()); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	_, _ = io.WriteString(w, "ok\n")
}

// statusCounts counts the answers the load generator got.
type statusCounts struct {
	mu     sync.Mutex
	counts map[int]int
	errors int
}

func (c *statusCounts) add(code int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.errors++
		return
	}
	if c.counts == nil {
		c.counts = map[int]int{}
	}
	c.counts[code]++
}

func (c *statusCounts) get(code int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[code]
}

func (c *statusCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	codes := make([]int, 0, len(c.counts))
	for k := range c.counts {
		codes = append(codes, k)
	}
	sort.Ints(codes)
	var b strings.Builder
	for _, k := range codes {
		fmt.Fprintf(&b, "%d:%d ", k, c.counts[k])
	}
	fmt.Fprintf(&b, "errors:%d", c.errors)
	return b.String()
}

// httpLoad sends GET requests to url at rate per second with at most
// maxConcurrent in flight (a tick with all slots busy is skipped and
// counted as an error) until ctx ends.
func httpLoad(ctx context.Context, url, host string, rate float64, maxConcurrent int, st *statusCounts) {
	client := &http.Client{Timeout: 10 * time.Second}
	sem := make(chan struct{}, maxConcurrent)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			st.add(0, errors.New("all request slots busy"))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				st.add(0, err)
				return
			}
			req.Host = host
			resp, err := client.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					st.add(0, err)
				}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			st.add(resp.StatusCode, nil)
		}()
	}
}

// dbStats counts what the database load met.
type dbStats struct {
	queries      atomic.Int64
	refused      atomic.Int64 // SQLSTATE 53300 too_many_connections
	lockTimeouts atomic.Int64 // SQLSTATE 55P03 lock_not_available
	otherErrors  atomic.Int64
	lastOther    atomic.Value // string
}

func (s *dbStats) record(err error) {
	var pqErr *pq.Error
	switch {
	case err == nil:
		s.queries.Add(1)
	case errors.As(err, &pqErr) && pqErr.Code == "53300":
		s.refused.Add(1)
	case errors.As(err, &pqErr) && pqErr.Code == "55P03":
		s.lockTimeouts.Add(1)
	case errors.Is(err, context.Canceled) || errors.Is(err, sql.ErrConnDone):
	default:
		s.otherErrors.Add(1)
		s.lastOther.Store(err.Error())
	}
}

func (s *dbStats) String() string {
	last, _ := s.lastOther.Load().(string)
	return fmt.Sprintf("queries:%d refused(53300):%d lock_timeouts(55P03):%d other_errors:%d %s",
		s.queries.Load(), s.refused.Load(), s.lockTimeouts.Load(), s.otherErrors.Load(), last)
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// healthyDBLoad reads accounts with two connections until ctx ends.
func healthyDBLoad(ctx context.Context, dsn string, st *dbStats) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(2)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				var bal int64
				err := db.QueryRowContext(ctx, "SELECT balance FROM accounts WHERE id = $1", 1+i%100).Scan(&bal)
				if ctx.Err() == nil {
					st.record(err)
				}
				pause(ctx, 100*time.Millisecond)
			}
		}()
	}
	wg.Wait()
	return nil
}

// peakDBLoad is the peak hour: one transaction holds an exclusive lock on
// accounts (a migration, a long batch job) while waiters queue behind it
// with lock_timeout, and sleepers hold more connections than the server
// allows, so that new connections are refused. It runs until ctx ends.
func peakDBLoad(ctx context.Context, dsn string, waiters, sleepers int, st *dbStats) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1 + waiters + sleepers)
	db.SetMaxIdleConns(1 + waiters + sleepers)

	var wg sync.WaitGroup
	defer wg.Wait()
	holding := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			tx, err := db.BeginTx(ctx, nil)
			if err == nil {
				_, err = tx.ExecContext(ctx, "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
				if err == nil {
					close(holding)
					<-ctx.Done()
				}
				_ = tx.Rollback()
			}
			if ctx.Err() == nil {
				st.record(err)
				pause(ctx, 100*time.Millisecond)
			}
		}
	}()
	select {
	case <-holding:
	case <-ctx.Done():
		return nil
	}
	for w := 0; w < waiters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				err := lockedUpdate(ctx, db)
				if ctx.Err() == nil {
					st.record(err)
				}
			}
		}()
	}
	for s := 0; s < sleepers; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, err := db.ExecContext(ctx, "SELECT pg_sleep(1)")
				if ctx.Err() != nil {
					return
				}
				st.record(err)
				if err != nil {
					pause(ctx, time.Second)
				}
			}
		}()
	}
	<-ctx.Done()
	return nil
}

// lockedUpdate updates an account with a lock timeout: behind the
// exclusive lock it waits 3 s and fails with 55P03.
func lockedUpdate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		pause(ctx, 200*time.Millisecond)
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = '3s'"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = 1"); err != nil {
		return err
	}
	return tx.Commit()
}

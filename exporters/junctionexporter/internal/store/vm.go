// Package store keeps what the junction exporter receives: derived series in
// embedded VictoriaMetrics storage, alert records with their evidence in an
// append-only log, and the latest entity, edge and rule state in memory.
package store

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/logger"
)

// vmMemoryPercent caps VictoriaMetrics' caches at this share of RAM: the
// collector shares the machine with the pipelines, VictoriaMetrics' own
// default of 60% would starve them.
const vmMemoryPercent = "10"

var vmInitOnce sync.Once

// initVictoriaMetrics prepares VictoriaMetrics' process-wide state. Its
// libraries read Go's global flag set and panic unless it is parsed; the
// collector has its own command line, so the global set is parsed with no
// arguments, after lowering the memory share and the log level.
func initVictoriaMetrics() {
	vmInitOnce.Do(func() {
		if !flag.Parsed() {
			setFlag("memory.allowedPercent", vmMemoryPercent)
			setFlag("loggerLevel", "ERROR")
			_ = flag.CommandLine.Parse(nil)
		} else {
			// Parsed by the embedding program (go test does): the values
			// can still be set before VictoriaMetrics reads them.
			if f := flag.Lookup("memory.allowedPercent"); f != nil && f.Value.String() == f.DefValue {
				setFlag("memory.allowedPercent", vmMemoryPercent)
			}
			if f := flag.Lookup("loggerLevel"); f != nil && f.Value.String() == f.DefValue {
				setFlag("loggerLevel", "ERROR")
			}
		}
		logger.InitNoLogFlags()
	})
}

func setFlag(name, value string) {
	if f := flag.Lookup(name); f != nil {
		_ = f.Value.Set(value)
	}
}

// ErrStorage marks errors about the data directory: it is missing, not
// writable or full.
var ErrStorage = errors.New("junction storage")

// CheckDirectory makes sure dir exists (creating it), is writable and has at
// least minFree bytes free. VictoriaMetrics ends the process on such errors,
// so they are checked before it opens the directory.
func CheckDirectory(dir string, minFree uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: storage.directory %q cannot be created: %w", ErrStorage, dir, err)
	}
	probe := filepath.Join(dir, ".junction-write-probe")
	f, err := os.OpenFile(probe, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("%w: storage.directory %q is not writable (check its owner and mode): %w", ErrStorage, dir, err)
	}
	_, werr := f.Write([]byte("ok"))
	serr := f.Sync()
	cerr := f.Close()
	_ = os.Remove(probe)
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("%w: storage.directory %q is not writable: %w", ErrStorage, dir, err)
	}
	free, err := FreeBytes(dir)
	if err != nil {
		return fmt.Errorf("%w: storage.directory %q: %w", ErrStorage, dir, err)
	}
	if free < minFree {
		return fmt.Errorf("%w: storage.directory %q has %d bytes free, storage.min_free_bytes is %d: free space or point it at a larger volume", ErrStorage, dir, free, minFree)
	}
	return nil
}

// FreeBytes returns the space available to unprivileged users on the file
// system holding dir.
func FreeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs: %w", err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

package graph

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/junction-sre/junction/processors/correlationprocessor/internal/window"
)

// ConsumeLogs counts log records and their templates per service, and turns
// JSON access-log records of proxies into proxy requests.
func (g *Graph) ConsumeLogs(ld plog.Logs, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		// The service is resolved on its first record that is not an access
		// log, so a proxy's access logs do not make it a service.
		var svc *entityState
		resolved := false
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				if g.accessLog(now, res, lr) {
					continue
				}
				if !resolved {
					resolved = true
					svc = g.serviceFromResource(now, res, true)
					g.link(svc, g.podEntity(now, res))
				}
				g.logRecord(now, svc, lr)
			}
		}
	}
}

func (g *Graph) logRecord(now time.Time, svc *entityState, lr plog.LogRecord) {
	body := lr.Body()
	if svc == nil {
		return
	}
	svc.win.Add(now, window.LogRecords, 1)
	sev := lr.SeverityText()
	isErr := lr.SeverityNumber() >= plog.SeverityNumberError
	if lr.SeverityNumber() == plog.SeverityNumberUnspecified {
		switch strings.ToUpper(sev) {
		case "ERROR", "FATAL", "CRITICAL", "CRIT", "EMERG", "ALERT", "PANIC":
			isErr = true
		}
	}
	if isErr {
		svc.win.Add(now, window.LogErrors, 1)
	}
	if sev == "" {
		sev = lr.SeverityNumber().String()
	}
	var tid string
	if t := lr.TraceID(); !t.IsEmpty() {
		tid = hex.EncodeToString(t[:])
	}
	g.addLog(svc, now, sev, body.AsString(), tid)
}

// accessLog reports whether lr is an access-log record (status and duration
// fields in its attributes, as the file_log receiver's json_parser writes
// them by default, or in its body: a map or a string holding a JSON object)
// and if so counts it on the proxy entity of the resource's service and the
// record's route.
func (g *Graph) accessLog(now time.Time, res pcommon.Map, lr plog.LogRecord) bool {
	al := &g.s.AccessLog
	fields := lr.Attributes()
	if lookup(al.Status, fields) == "" {
		var ok bool
		if fields, ok = bodyFields(lr.Body()); !ok {
			return false
		}
	}
	status := lookup(al.Status, fields)
	code, err := strconv.Atoi(status)
	if err != nil || code < 100 || code > 999 {
		return false
	}
	var ms float64
	if v := lookup(al.DurationMs, fields); v != "" {
		if ms, err = strconv.ParseFloat(v, 64); err != nil {
			return false
		}
	} else if v := lookup(al.DurationS, fields); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false
		}
		ms = s * 1000
	} else {
		// A status without a duration is an application's structured log.
		return false
	}
	px := g.proxyEntity(now, lookup(g.s.Identity.ServiceName, res), lookup(al.Route, fields))
	if px == nil {
		return true
	}
	failed := code >= 500
	px.win.Observe(now, ms, failed)
	if code == 429 || code == 503 {
		px.win.Add(now, window.Shed, 1)
	}
	return true
}

// bodyFields returns the fields of a structured log body: a map, or a string
// holding a JSON object.
func bodyFields(body pcommon.Value) (pcommon.Map, bool) {
	switch body.Type() {
	case pcommon.ValueTypeMap:
		return body.Map(), true
	case pcommon.ValueTypeStr:
		s := strings.TrimSpace(body.Str())
		if len(s) < 2 || s[0] != '{' {
			return pcommon.Map{}, false
		}
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil {
			return pcommon.Map{}, false
		}
		fields := pcommon.NewMap()
		if fields.FromRaw(m) != nil {
			return pcommon.Map{}, false
		}
		return fields, true
	}
	return pcommon.Map{}, false
}
